// net/wire.hpp: HTTP/1.1 heads serialized by hand into one contiguous string. The hot path
// writes a head and a body as two buffers in one gather write; Beast's generic serializer
// costs several times more per small message (measured with perf in bench/).
#pragma once
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace sluice::net {

// Header values must not contain CR or LF; callers pass values they built or validated.
struct Header {
  std::string_view name, value;
};

// "HTTP/1.x <status> <reason>\r\n" + headers + Content-Length (unless chunked) + Connection.
// content_length == kCloseDelimited writes no length: the body ends when the connection does.
inline constexpr size_t kCloseDelimited = static_cast<size_t>(-1);
std::string response_head(unsigned status, unsigned version, std::string_view content_type,
                          std::string_view request_id, bool keep_alive, size_t content_length,
                          std::span<const Header> extra = {}, bool chunked = false);

// "METHOD target HTTP/1.1\r\n" + Host + headers + Content-Length.
std::string request_head(std::string_view method, std::string_view target, std::string_view host,
                         size_t content_length, std::initializer_list<Header> headers);

std::string_view reason_phrase(unsigned status);

}  // namespace sluice::net
