#include "metadata/gc.h"

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "common/log.h"
#include "content/content.h"
#include "snapshots/snapshotter.h"

namespace berth::metadata {
namespace {

constexpr std::string_view kLabelGcRoot = "containerd.io/gc.root";
constexpr std::string_view kLabelGcSnapRef = "containerd.io/gc.ref.snapshot.";
constexpr std::string_view kLabelGcContentRef = "containerd.io/gc.ref.content";
constexpr std::string_view kLabelGcExpire = "containerd.io/gc.expire";
constexpr std::string_view kLabelGcFlat = "containerd.io/gc.flat";

struct Node {
  enum class Kind { kContent, kSnapshot, kIngest };
  Kind kind;
  std::string ns;
  std::string key;    // digest, "<snapshotter>/<key>", ingest ref
  bool flat = false;  // reached through a flat lease: do not follow its label refs

  auto Tie() const { return std::tie(kind, ns, key); }
  bool operator<(const Node& o) const { return Tie() < o.Tie(); }
};

// Label references of an object, as nodes (containerd's sendLabelRefs).
void LabelRefs(const std::string& ns, const Labels& labels, std::vector<Node>& out) {
  for (const auto& [k, v] : labels) {
    if (k.rfind(kLabelGcContentRef, 0) == 0) {
      if (k.size() > kLabelGcContentRef.size() && k[kLabelGcContentRef.size()] != '.' &&
          k[kLabelGcContentRef.size()] != '/') {
        continue;
      }
      out.push_back({Node::Kind::kContent, ns, v});
    } else if (k.rfind(kLabelGcSnapRef, 0) == 0) {
      std::string snapshotter = k.substr(kLabelGcSnapRef.size());
      if (auto slash = snapshotter.find('/'); slash != std::string::npos) {
        snapshotter.resize(slash);
      }
      out.push_back({Node::Kind::kSnapshot, ns, snapshotter + "/" + v});
    }
  }
}

class Marker {
 public:
  explicit Marker(const Txn& txn) : txn_(txn) {}

  Status ScanRoots(Timestamp now) {
    for (const auto& ns : txn_.Children({kBucketVersion})) {
      BERTH_TRY(ScanLeases(ns, now));
      // Images: target and label refs.
      for (const auto& name : txn_.Children(NsKey(ns, {kBucketImages}))) {
        BERTH_ASSIGN_OR_RETURN(auto digest,
                               txn_.Get(NsKey(ns, {kBucketImages, name, "target", "digest"})));
        if (digest) Push({Node::Kind::kContent, ns, *digest});
        BERTH_ASSIGN_OR_RETURN(Labels labels,
                               ReadLabels(txn_, NsKey(ns, {kBucketImages, name, "labels"})));
        std::vector<Node> refs;
        LabelRefs(ns, labels, refs);
        for (auto& r : refs) Push(std::move(r));
      }
      // Containers: their snapshot and label refs (containerd's metadata/gc.go scanRoots).
      for (const auto& id : txn_.Children(NsKey(ns, {kBucketContainers}))) {
        BERTH_ASSIGN_OR_RETURN(auto sn,
                               txn_.Get(NsKey(ns, {kBucketContainers, id, "snapshotter"})));
        if (sn && !sn->empty()) {
          BERTH_ASSIGN_OR_RETURN(auto key,
                                 txn_.Get(NsKey(ns, {kBucketContainers, id, "snapshotKey"})));
          Push({Node::Kind::kSnapshot, ns, *sn + "/" + key.value_or("")});
        }
        BERTH_ASSIGN_OR_RETURN(Labels labels,
                               ReadLabels(txn_, NsKey(ns, {kBucketContainers, id, "labels"})));
        std::vector<Node> refs;
        LabelRefs(ns, labels, refs);
        for (auto& r : refs) Push(std::move(r));
      }
      // Blobs marked as roots.
      for (const auto& d : txn_.Children(NsKey(ns, {kBucketContent, "blob"}))) {
        BERTH_ASSIGN_OR_RETURN(Labels labels,
                               ReadLabels(txn_, NsKey(ns, {kBucketContent, "blob", d, "labels"})));
        if (labels.count(std::string(kLabelGcRoot)) != 0) Push({Node::Kind::kContent, ns, d});
      }
      // Snapshots marked as roots.
      for (const auto& sn : txn_.Children(NsKey(ns, {kBucketSnapshots}))) {
        for (const auto& key : txn_.Children(NsKey(ns, {kBucketSnapshots, sn}))) {
          BERTH_ASSIGN_OR_RETURN(
              Labels labels, ReadLabels(txn_, NsKey(ns, {kBucketSnapshots, sn, key, "labels"})));
          if (labels.count(std::string(kLabelGcRoot)) != 0) {
            Push({Node::Kind::kSnapshot, ns, sn + "/" + key});
          }
        }
      }
      // Ingests that have not expired.
      for (const auto& ref : txn_.Children(NsKey(ns, {kBucketContent, "ingests"}))) {
        BERTH_ASSIGN_OR_RETURN(auto exp,
                               txn_.Get(NsKey(ns, {kBucketContent, "ingests", ref, "expireat"})));
        if (exp && DecodeTime(*exp) > now) Push({Node::Kind::kIngest, ns, ref});
      }
    }
    return Ok();
  }

  Status Mark() {
    while (!queue_.empty()) {
      Node n = std::move(queue_.front());
      queue_.pop_front();
      std::vector<Node> refs;
      if (n.kind == Node::Kind::kContent && !n.flat) {
        BERTH_ASSIGN_OR_RETURN(
            Labels labels,
            ReadLabels(txn_, NsKey(n.ns, {kBucketContent, "blob", n.key, "labels"})));
        LabelRefs(n.ns, labels, refs);
      } else if (n.kind == Node::Kind::kSnapshot) {
        auto slash = n.key.find('/');
        std::string sn = n.key.substr(0, slash);
        std::string key = n.key.substr(slash + 1);
        BERTH_ASSIGN_OR_RETURN(auto parent,
                               txn_.Get(NsKey(n.ns, {kBucketSnapshots, sn, key, "parent"})));
        if (parent) refs.push_back({Node::Kind::kSnapshot, n.ns, sn + "/" + *parent});
        if (!n.flat) {
          BERTH_ASSIGN_OR_RETURN(
              Labels labels, ReadLabels(txn_, NsKey(n.ns, {kBucketSnapshots, sn, key, "labels"})));
          LabelRefs(n.ns, labels, refs);
        }
      } else if (n.kind == Node::Kind::kIngest) {
        BERTH_ASSIGN_OR_RETURN(
            auto expected, txn_.Get(NsKey(n.ns, {kBucketContent, "ingests", n.key, "expected"})));
        if (expected) refs.push_back({Node::Kind::kContent, n.ns, *expected});
      }
      for (auto& r : refs) Push(std::move(r));
    }
    return Ok();
  }

  bool Marked(Node::Kind kind, const std::string& ns, const std::string& key) const {
    return marked_.count({kind, ns, key}) != 0;
  }
  const std::set<std::pair<std::string, std::string>>& ExpiredLeases() const { return expired_; }

 private:
  void Push(Node n) {
    Node plain{n.kind, n.ns, n.key};
    if (marked_.count(plain) != 0) return;
    marked_.insert(plain);
    queue_.push_back(std::move(n));
  }

  Status ScanLeases(const std::string& ns, Timestamp now) {
    for (const auto& id : txn_.Children(NsKey(ns, {kBucketLeases}))) {
      BERTH_ASSIGN_OR_RETURN(Labels labels,
                             ReadLabels(txn_, NsKey(ns, {kBucketLeases, id, "labels"})));
      if (auto it = labels.find(std::string(kLabelGcExpire)); it != labels.end()) {
        auto exp = ParseRfc3339(it->second);
        if (!exp) {
          log::L()
              .With("lease", id)
              .With("namespace", ns)
              .Info("ignoring invalid expiration value " + it->second);
        } else if (now > *exp) {
          expired_.emplace(ns, id);
          continue;
        }
      }
      bool flat = labels.count(std::string(kLabelGcFlat)) != 0;
      for (const auto& d : txn_.Children(NsKey(ns, {kBucketLeases, id, "content"}))) {
        Node n{Node::Kind::kContent, ns, d};
        n.flat = flat;
        Push(std::move(n));
      }
      for (const auto& ref : txn_.Children(NsKey(ns, {kBucketLeases, id, "ingests"}))) {
        Push({Node::Kind::kIngest, ns, ref});
      }
      for (const auto& sn : txn_.Children(NsKey(ns, {kBucketLeases, id, "snapshots"}))) {
        for (const auto& key : txn_.Children(NsKey(ns, {kBucketLeases, id, "snapshots", sn}))) {
          Node n{Node::Kind::kSnapshot, ns, sn + "/" + key};
          n.flat = flat;
          Push(std::move(n));
        }
      }
    }
    return Ok();
  }

  const Txn& txn_;
  std::set<Node> marked_;
  std::deque<Node> queue_;
  std::set<std::pair<std::string, std::string>> expired_;
};

}  // namespace

Result<GcStats> GarbageCollect(Db& db) {
  auto start = std::chrono::steady_clock::now();
  std::unique_lock gc(db.GcLock());
  GcStats stats;
  std::set<std::string> live_digests;  // referenced by any namespace after the sweep
  std::set<std::string> live_brefs;    // backend ingest refs still recorded
  std::map<std::string, std::set<std::string>> live_snapshots;  // snapshotter -> backend keys
  Timestamp now = Now();

  BERTH_TRY(db.Update([&](Txn& txn) -> Status {
    Marker marker(txn);
    BERTH_TRY(marker.ScanRoots(now));
    BERTH_TRY(marker.Mark());
    for (const auto& [ns, id] : marker.ExpiredLeases()) {
      BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketLeases, id})));
      ++stats.leases_removed;
    }
    for (const auto& ns : txn.Children({kBucketVersion})) {
      for (const auto& d : txn.Children(NsKey(ns, {kBucketContent, "blob"}))) {
        if (marker.Marked(Node::Kind::kContent, ns, d)) {
          live_digests.insert(d);
        } else {
          BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketContent, "blob", d})));
          ++stats.content_records_removed;
        }
      }
      for (const auto& sn : txn.Children(NsKey(ns, {kBucketSnapshots}))) {
        for (const auto& key : txn.Children(NsKey(ns, {kBucketSnapshots, sn}))) {
          if (marker.Marked(Node::Kind::kSnapshot, ns, sn + "/" + key)) {
            BERTH_ASSIGN_OR_RETURN(auto bkey,
                                   txn.Get(NsKey(ns, {kBucketSnapshots, sn, key, "name"})));
            if (bkey) live_snapshots[sn].insert(*bkey);
          } else {
            BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, sn, key})));
            ++stats.snapshot_records_removed;
          }
        }
        // Children lists may name removed snapshots: drop those entries.
        for (const auto& key : txn.Children(NsKey(ns, {kBucketSnapshots, sn}))) {
          for (const auto& child :
               txn.Children(NsKey(ns, {kBucketSnapshots, sn, key, "children"}))) {
            BERTH_ASSIGN_OR_RETURN(bool alive,
                                   txn.Exists(NsKey(ns, {kBucketSnapshots, sn, child})));
            if (!alive) {
              BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, sn, key, "children", child})));
            }
          }
        }
      }
      for (const auto& ref : txn.Children(NsKey(ns, {kBucketContent, "ingests"}))) {
        if (marker.Marked(Node::Kind::kIngest, ns, ref)) {
          BERTH_ASSIGN_OR_RETURN(auto bref,
                                 txn.Get(NsKey(ns, {kBucketContent, "ingests", ref, "ref"})));
          if (bref) live_brefs.insert(*bref);
          BERTH_ASSIGN_OR_RETURN(auto expected,
                                 txn.Get(NsKey(ns, {kBucketContent, "ingests", ref, "expected"})));
          if (expected) live_digests.insert(*expected);
        } else {
          BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketContent, "ingests", ref})));
          ++stats.ingest_records_removed;
        }
      }
    }
    return Ok();
  }));

  // Backend: blobs and ingests nothing refers to any more.
  if (content::Store* backend = db.ContentBackend()) {
    std::vector<Digest> dead;
    BERTH_TRY(backend->Walk({},
                            [&](const content::Info& info) -> Status {
                              if (live_digests.count(info.digest.String()) == 0)
                                dead.push_back(info.digest);
                              return Ok();
                            },
                            {}));
    for (const auto& d : dead) {
      auto s = backend->Delete({}, d);
      if (s) {
        ++stats.blobs_removed;
      } else if (!s.error().Is(Errc::kNotFound)) {
        log::L().WithError(s.error()).With("digest", d.String()).Warn("gc: remove blob");
      }
    }
    BERTH_ASSIGN_OR_RETURN(auto ingests, backend->ListStatuses({}, {}));
    for (const auto& st : ingests) {
      if (live_brefs.count(st.ref) != 0) continue;
      auto s = backend->Abort({}, st.ref);
      if (s) {
        ++stats.ingests_aborted;
      } else if (!s.error().Is(Errc::kNotFound) && !s.error().Is(Errc::kUnavailable)) {
        log::L().WithError(s.error()).With("ref", st.ref).Warn("gc: abort ingest");
      }
    }
  }
  // Backend snapshots nothing records any more: children before parents, then each
  // snapshotter's own cleanup of directories.
  for (const auto& [name, sn] : db.SnapshotBackends()) {
    std::vector<std::string> dead;
    const auto& live = live_snapshots[name];
    BERTH_TRY(sn->Walk({},
                       [&](const snapshots::Info& info) -> Status {
                         if (live.count(info.name) == 0) dead.push_back(info.name);
                         return Ok();
                       },
                       {}));
    for (bool progress = true; progress && !dead.empty();) {
      progress = false;
      for (auto it = dead.begin(); it != dead.end();) {
        auto s = sn->Remove({}, *it);
        if (s || s.error().Is(Errc::kNotFound)) {
          ++stats.snapshots_removed;
          it = dead.erase(it);
          progress = true;
        } else {
          ++it;  // has children still: next round
        }
      }
    }
    for (const auto& key : dead) {
      log::L().With("snapshotter", name).With("key", key).Warn("gc: snapshot could not be removed");
    }
    if (auto s = sn->Cleanup({}); !s && !s.error().Is(Errc::kNotImplemented)) {
      log::L().WithError(s.error()).With("snapshotter", name).Warn("gc: snapshotter cleanup");
    }
  }
  stats.duration = std::chrono::steady_clock::now() - start;
  return stats;
}

}  // namespace berth::metadata
