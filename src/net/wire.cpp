#include "net/wire.hpp"

#include <charconv>

namespace sluice::net {

namespace {
void append_number(std::string& out, size_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, p);
}
void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}
}  // namespace

std::string_view reason_phrase(unsigned s) {
  switch (s) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

std::string response_head(unsigned status, unsigned version, std::string_view content_type,
                          std::string_view request_id, bool keep_alive, size_t content_length,
                          std::span<const Header> extra, bool chunked) {
  std::string h;
  h.reserve(192);
  h += version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
  append_number(h, status);
  h.push_back(' ');
  h.append(reason_phrase(status));
  h += "\r\n";
  if (!content_type.empty()) append_header(h, "Content-Type", content_type);
  if (!request_id.empty()) append_header(h, "x-request-id", request_id);
  for (const Header& x : extra) {
    if (!x.value.empty()) append_header(h, x.name, x.value);
  }
  if (chunked) {
    h += "Transfer-Encoding: chunked\r\n";
  } else if (content_length != kCloseDelimited) {
    h += "Content-Length: ";
    append_number(h, content_length);
    h += "\r\n";
  }
  // HTTP/1.1 is persistent by default, HTTP/1.0 is not: say so only when it differs.
  if (version >= 11 && !keep_alive) h += "Connection: close\r\n";
  if (version < 11 && keep_alive) h += "Connection: keep-alive\r\n";
  h += "\r\n";
  return h;
}

std::string request_head(std::string_view method, std::string_view target, std::string_view host,
                         size_t content_length, std::initializer_list<Header> headers) {
  std::string h;
  h.reserve(256);
  h.append(method);
  h.push_back(' ');
  h.append(target);
  h += " HTTP/1.1\r\nHost: ";
  h.append(host);
  h += "\r\n";
  for (const Header& x : headers) {
    if (!x.value.empty()) append_header(h, x.name, x.value);
  }
  if (method != "GET" || content_length > 0) {
    h += "Content-Length: ";
    append_number(h, content_length);
    h += "\r\n";
  }
  h += "\r\n";
  return h;
}

}  // namespace sluice::net
