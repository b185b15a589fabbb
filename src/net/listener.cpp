#include "net/listener.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::net {

namespace {

// flock(2) on one file in the temp directory, held while a process binds its acceptors.
class BindLock {
 public:
  BindLock() {
    fd_ = ::open("/tmp/.sluice-bind.lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);  // best effort: without the file the check still runs
  }
  ~BindLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  BindLock(const BindLock&) = delete;
  BindLock& operator=(const BindLock&) = delete;

 private:
  int fd_ = -1;
};

bool address_free(const tcp::endpoint& ep, std::string& error, const std::string& host) {
  int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // cannot check; the real bind reports its own errors
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT leftovers are fine
  int rc = ::bind(fd, ep.data(), static_cast<socklen_t>(ep.size()));
  int err = errno;
  ::close(fd);
  if (rc == 0) return true;
  if (err == EADDRINUSE)
    error = "cannot listen on " + host + ":" + std::to_string(ep.port()) +
            ": the address is already in use by another process (is another sluice or mock-llm running there?)";
  else
    error = "cannot listen on " + host + ":" + std::to_string(ep.port()) + ": " + std::strerror(err);
  return false;
}

}  // namespace

std::vector<tcp::acceptor> bind_acceptors(const std::vector<asio::io_context*>& contexts, const std::string& host,
                                          uint16_t port, std::string& error, uint16_t& bound_port) {
  std::vector<tcp::acceptor> out;
  error_code ec;
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  auto addr = asio::ip::make_address(h, ec);
  if (ec) {
    error = "invalid listen address '" + host + "' (use an IP address)";
    return {};
  }
  tcp::endpoint ep(addr, port);
  // SO_REUSEPORT lets every worker have its own acceptor, but it would also let a second
  // process join the group and silently take a share of the connections. So: under a
  // machine-wide lock held only while binding, first check that nobody listens on the
  // address (a plain bind, which fails against any listener, reuseport or not), then bind
  // the group. Port 0 asks the kernel for a free port: nobody else can hold it.
  BindLock lock;
  if (port != 0 && !address_free(ep, error, host)) return {};
  for (asio::io_context* ioc : contexts) {
    tcp::acceptor a(*ioc);
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = error_code(errno, boost::system::system_category());
    }
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(4096, ec);
    if (ec) {
      error = "cannot listen on " + host + ":" + std::to_string(ep.port()) + ": " + ec.message();
      return {};
    }
    ep.port(a.local_endpoint().port());  // port 0: the rest bind to the chosen port
    out.push_back(std::move(a));
  }
  bound_port = ep.port();
  return out;
}

}  // namespace sluice::net
