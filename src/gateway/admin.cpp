// gateway/admin.cpp: the admin API (token auth and roles) and the ops endpoints.
#include "gateway/admin.hpp"

#include "core/crypto.hpp"
#include "core/strings.hpp"

namespace sluice::gateway {

namespace {
int role_rank(std::string_view role) {
  if (role == "admin") return 3;
  if (role == "operator") return 2;
  if (role == "viewer") return 1;
  return 0;
}
}  // namespace

awaitable<bool> AdminHandler::handle(beast::tcp_stream& stream, beast::flat_buffer&,
                                     http::request<http::string_body>& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  bool keep = req.keep_alive() && !draining();
  std::string id = ids_.next();
  auto reply = [&](http::status st, std::string body) -> awaitable<bool> {
    stream.expires_after(std::chrono::seconds(30));
    error_code ec = co_await net::write_response(stream, st, std::move(body), "application/json", id, keep);
    co_return !ec && keep;
  };
  if (!starts_with(path, "/admin/")) {
    if (req.method() == http::verb::get) {
      if (auto ops = ops_endpoint(env_.shared, path)) {
        stream.expires_after(std::chrono::seconds(30));
        error_code ec = co_await net::write_response(stream, ops->status, std::move(ops->body), ops->content_type, id, keep);
        co_return !ec && keep;
      }
    }
    co_return co_await reply(http::status::not_found, not_found("Unknown admin URL: " + std::string(path), "unknown_url").to_json());
  }

  // Every /admin/ path, existing or not, needs a valid token first.
  std::string_view auth = req[http::field::authorization];
  int rank = 0;
  if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
    std::string h = sha256_hex(trim(auth.substr(7)));
    if (!env_.bootstrap_token_sha256.empty() && constant_time_equals(h, env_.bootstrap_token_sha256)) rank = 3;
    auto snap = env_.shared.snapshots.current();
    for (const auto& t : snap->config().admin_tokens) {
      if (constant_time_equals(h, t.token_sha256)) rank = std::max(rank, role_rank(t.role));
    }
  }
  if (rank == 0) co_return co_await reply(http::status::unauthorized, unauthorized("A valid admin bearer token is required.").to_json());

  auto forbidden = [&](const char* need) {
    return ApiError{403, "permission_error", "insufficient_role", std::string("this action needs the ") + need + " role"}
        .to_json();
  };
  if (path == "/admin/v1/status" && req.method() == http::verb::get) co_return co_await reply(http::status::ok, env_.describe());
  if (path == "/admin/v1/config/reload" && req.method() == http::verb::post) {
    if (rank < 2) co_return co_await reply(http::status::forbidden, forbidden("operator"));
    std::string err = env_.reload();
    if (!err.empty()) {
      ApiError e{400, "invalid_request_error", "invalid_config", "configuration rejected, the running one is kept: " + err};
      co_return co_await reply(http::status::bad_request, e.to_json());
    }
    co_return co_await reply(http::status::ok, env_.describe());
  }
  co_return co_await reply(http::status::not_found, not_found("Unknown admin URL: " + std::string(path), "unknown_url").to_json());
}

}  // namespace sluice::gateway
