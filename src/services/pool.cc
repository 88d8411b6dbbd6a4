#include "services/pool.h"

#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include "services/grpc_util.h"

namespace berth::services {

void PostBlocking(std::function<void()> fn) {
  static asio::thread_pool pool(4);
  asio::post(pool, std::move(fn));
}

grpc::Status ToGrpcStatus(const berth::Status& status) { return ToGrpc(status); }

}  // namespace berth::services
