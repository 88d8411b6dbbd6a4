#pragma once
// The client-library pieces the commands call by their short names.
#include "client/unpack.h"

namespace berth::cli {

namespace snapshots_api = client::snapshots_api;
using client::ContentReader;
using client::CopyContent;
using client::CreateLease;
using client::DeleteLease;
using client::DiffApply;
using client::DiffCompare;
using client::DiffOptions;
using client::LeasedSession;
using client::LeaseSpec;
using client::NewUniqueId;
using client::ReadContent;
using client::ResolveSnapshotterName;
using client::SetContentLabel;
using client::SnapshotClient;
using client::SnapshotUsage;
using client::UnpackImage;
using client::UnpackManifest;
using client::UnpackOptions;
using client::UnpackResult;
using client::WithLease;

}  // namespace berth::cli
