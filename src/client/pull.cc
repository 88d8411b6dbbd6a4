// client.Pull on a session: the transfer pipeline over RemoteStores.
#include "client/remote_stores.h"
#include "client/transfer.h"

namespace berth::client {

Result<PullResult> Pull(const Session& session, const std::string& ref,
                        const PullOptions& options) {
  RemoteStores stores(session);
  return transfer::Pull(stores, StoresContext(session), ref, options);
}

}  // namespace berth::client
