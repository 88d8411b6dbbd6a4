#pragma once
// The FIFO sets a CRI container or exec process gets for its stdio (containerd cio
// NewFIFOSetInDir, pkg/cri/io/helpers.go newFifos): `<root>/<random>/<id>-stdin|-stdout|-stderr`,
// the directory 0700, each FIFO 0700. The paths are what the shim is given as the process's
// stdin/stdout/stderr (it opens stdout/stderr O_RDWR|O_NONBLOCK and writes them, and opens stdin
// O_RDONLY|O_NONBLOCK and reads it: src/shim/stdio.cc).
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::cri::io {

struct FifoSet {
  std::string dir;          // the directory holding the FIFOs
  std::string stdin_path;   // "" when the process has no stdin
  std::string stdout_path;  // always set
  std::string stderr_path;  // "" with a terminal (the pty merges stderr into stdout)
  bool terminal = false;
};

// Creates `root` (0700, parents too) if missing, a new directory `<root>/<random>` (0700) and in
// it the FIFOs `<id>-stdout`, `<id>-stderr` unless `terminal`, `<id>-stdin` if `with_stdin`.
// InvalidArgument for an empty `id` or one containing '/'; ErrnoError classes of mkdir/mkfifo.
// Nothing is left behind on error.
Result<FifoSet> CreateFifoSet(const std::string& root, std::string_view id, bool with_stdin,
                              bool terminal);

// Removes a set made by CreateFifoSet: its whole directory.
Status RemoveFifoSetDir(const FifoSet& fifos);

// Removes a set known only by its paths (re-attached after a restart), as containerd's
// loadFifos closer does: unlinks each path that is a FIFO, then removes each parent directory
// if it is empty (a non-empty one is left alone). Returns the first unlink error.
Status RemoveFifoPaths(const FifoSet& fifos);

// Opens an existing FIFO O_RDWR|O_NONBLOCK|O_CLOEXEC. Never blocks, and we count as both a reader
// and a writer: reads never see EOF and writes never fail with EPIPE, whoever else has the FIFO
// open (the shim may come and go). NotFound if missing, InvalidArgument if not a FIFO.
Result<fs::UniqueFd> OpenFifoReadWrite(const std::string& path);

}  // namespace berth::cri::io
