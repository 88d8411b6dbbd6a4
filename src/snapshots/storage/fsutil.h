#pragma once
// Small filesystem helpers the implementations share.
#include <string>
#include <utility>

#include "common/errdefs.h"

namespace berth::snapshots::storage {

// Creates `root` (mkdir -p, 0700 for what it creates) and returns its absolute, symlink-free path:
// mounts carry absolute paths.
Result<std::string> PrepareRoot(const std::string& root);
// mkdtemp("<parent>/<prefix>XXXXXX"): a fresh 0700 directory.
Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix);
// True when readdir on `dir`'s filesystem reports file types (overlayfs needs d_type).
Result<bool> SupportsDType(const std::string& dir);

// Runs `fn` when the scope ends unless Dismiss()ed: the undo of a multi-step build.
template <class F>
class ScopeExit {
 public:
  explicit ScopeExit(F fn) : fn_(std::move(fn)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  ~ScopeExit() {
    if (armed_) fn_();
  }
  void Dismiss() { armed_ = false; }

 private:
  F fn_;
  bool armed_ = true;
};

}  // namespace berth::snapshots::storage
