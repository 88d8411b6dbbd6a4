#pragma once
// Running one CNI plugin binary (libcni's pkg/invoke RawExec), private to cri/cni.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::cri::cni::internal {

struct ExecOutput {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

// Runs `path` (absolute) with exactly `env`, `input` on stdin, collecting stdout and stderr. The
// child is spawned from the calling thread, so it runs in that thread's namespaces (network
// namespace included: a thread that has setns()-ed elsewhere gets plugins running there). It
// inherits no fd other than 0-2, gets default signal dispositions and an empty signal mask, and
// its own process group. Exec failing with ETXTBSY ("text file busy": the binary is being
// written) is retried 5 times, 1 s apart, as libcni does. A plugin still running after
// `timeout` is killed (SIGKILL to its process group) and DeadlineExceeded returned. A plugin
// that exits without reading its stdin does not raise SIGPIPE in the caller. Output beyond
// 16 MiB per stream is dropped. Errors: exec failures with the errno's class ("exec <path>").
Result<ExecOutput> Exec(const std::string& path, const std::vector<std::string>& env,
                        std::string_view input, std::chrono::milliseconds timeout);

}  // namespace berth::cri::cni::internal
