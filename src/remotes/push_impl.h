#pragma once
// The Pusher implementation's factory (internal to remotes/).
#include <memory>
#include <string>
#include <vector>

#include "remotes/registry.h"
#include "remotes/session.h"

namespace berth::remotes {

// A pusher for repository `repo` on `eps` (those with the push capability; the first is used).
Result<std::unique_ptr<Pusher>> MakePusher(std::shared_ptr<Session> session,
                                           std::vector<Endpoint> eps, std::string repo);

}  // namespace berth::remotes
