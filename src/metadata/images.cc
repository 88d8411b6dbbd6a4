#include "metadata/images.h"

#include <fmt/format.h>

#include "common/filters.h"
#include "metadata/namespaces.h"

namespace berth::metadata {
namespace {

Key ImageKey(const std::string& ns, const std::string& name,
             std::initializer_list<std::string> rest = {}) {
  Key k = NsKey(ns, {kBucketImages, name});
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

Result<std::optional<Image>> ReadImage(const Txn& txn, const std::string& ns,
                                       const std::string& name) {
  BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(ImageKey(ns, name, {"createdat"})));
  if (!created) return std::optional<Image>();
  Image img{.name = name, .created_at = DecodeTime(*created)};
  BERTH_ASSIGN_OR_RETURN(auto updated, txn.Get(ImageKey(ns, name, {"updatedat"})));
  img.updated_at = DecodeTime(updated.value_or(""));
  BERTH_ASSIGN_OR_RETURN(img.labels, ReadLabels(txn, ImageKey(ns, name, {"labels"})));
  BERTH_ASSIGN_OR_RETURN(auto digest, txn.Get(ImageKey(ns, name, {"target", "digest"})));
  BERTH_ASSIGN_OR_RETURN(auto media, txn.Get(ImageKey(ns, name, {"target", "mediatype"})));
  BERTH_ASSIGN_OR_RETURN(auto size, txn.Get(ImageKey(ns, name, {"target", "size"})));
  if (digest) {
    auto d = Digest::Parse(*digest);
    if (d) img.target.digest = *d;
  }
  img.target.media_type = media.value_or("");
  img.target.size = size ? std::stoll(*size) : 0;
  BERTH_ASSIGN_OR_RETURN(img.target.annotations,
                         ReadLabels(txn, ImageKey(ns, name, {"target", "annotations"})));
  return std::optional<Image>(std::move(img));
}

Status WriteImage(Txn& txn, const std::string& ns, const Image& img) {
  BERTH_TRY(txn.DeleteTree(ImageKey(ns, img.name)));
  BERTH_TRY(txn.Put(ImageKey(ns, img.name, {"createdat"}), EncodeTime(img.created_at)));
  BERTH_TRY(txn.Put(ImageKey(ns, img.name, {"updatedat"}), EncodeTime(img.updated_at)));
  BERTH_TRY(WriteLabels(txn, ImageKey(ns, img.name, {"labels"}), img.labels));
  BERTH_TRY(txn.Put(ImageKey(ns, img.name, {"target", "digest"}), img.target.digest.String()));
  BERTH_TRY(txn.Put(ImageKey(ns, img.name, {"target", "mediatype"}), img.target.media_type));
  BERTH_TRY(txn.Put(ImageKey(ns, img.name, {"target", "size"}), std::to_string(img.target.size)));
  return WriteLabels(txn, ImageKey(ns, img.name, {"target", "annotations"}),
                     img.target.annotations);
}

Status ValidateImage(const Image& img) {
  if (img.name.empty()) return InvalidArgument("image name must not be empty");
  if (auto s = labels::ValidateAll(img.labels); !s)
    return std::move(s).error().Wrap("image.Labels");
  return ValidateTarget(img.target);
}

}  // namespace

Status ValidateTarget(const Descriptor& target) {
  if (target.digest.Empty()) {
    return InvalidArgument("Target.Digest \"\" invalid: invalid checksum digest format");
  }
  if (target.size <= 0) return InvalidArgument("Target.Size must be greater than zero");
  if (target.media_type.empty()) return InvalidArgument("Target.MediaType must be set");
  return Ok();
}

Result<Image> ImageStore::Get(const Context& ctx, const std::string& name) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<Image> img;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(img, ReadImage(txn, ns, name));
    return Ok();
  }));
  if (!img) return NotFound(fmt::format("image {:?}", name));
  return *img;
}

Result<std::vector<Image>> ImageStore::List(const Context& ctx,
                                            const std::vector<std::string>& filter_strings) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
  std::vector<Image> out;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    for (const auto& name : txn.Children(NsKey(ns, {kBucketImages}))) {
      BERTH_ASSIGN_OR_RETURN(auto img, ReadImage(txn, ns, name));
      if (!img) continue;
      auto adaptor = filters::MakeAdaptor(
          {{"name", img->name},
           {"target.digest", img->target.digest.String()},
           {"target.mediatype", img->target.media_type}},
          {{"labels", &img->labels}, {"annotations", &img->target.annotations}});
      if (filter.Match(adaptor)) out.push_back(std::move(*img));
    }
    return Ok();
  }));
  return out;
}

Result<Image> ImageStore::Create(const Context& ctx, Image image) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(ValidateImage(image));
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_TRY(NamespaceStore::CreateIfMissing(txn, ns));
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(ImageKey(ns, image.name)));
    if (exists) return AlreadyExists(fmt::format("image {:?}", image.name));
    image.created_at = Now();
    image.updated_at = image.created_at;
    return WriteImage(txn, ns, image);
  }));
  db_.NotifyMutation(false);
  return image;
}

Result<Image> ImageStore::Update(const Context& ctx, const Image& image,
                                 const std::vector<std::string>& fieldpaths) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  if (image.name.empty()) return InvalidArgument("image name is required for update");
  Image updated;
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto cur, ReadImage(txn, ns, image.name));
    if (!cur) return NotFound(fmt::format("image {:?}", image.name));
    updated = *cur;
    Timestamp created = updated.created_at;
    if (fieldpaths.empty()) {
      updated = image;
    }
    for (const auto& path : fieldpaths) {
      if (path.rfind("labels.", 0) == 0) {
        std::string key = path.substr(7);
        auto it = image.labels.find(key);
        updated.labels[key] = it == image.labels.end() ? "" : it->second;
      } else if (path.rfind("annotations.", 0) == 0) {
        std::string key = path.substr(12);
        auto it = image.target.annotations.find(key);
        updated.target.annotations[key] = it == image.target.annotations.end() ? "" : it->second;
      } else if (path == "labels") {
        updated.labels = image.labels;
      } else if (path == "target") {
        updated.target = image.target;
      } else if (path == "annotations") {
        updated.target.annotations = image.target.annotations;
      } else {
        return InvalidArgument(
            fmt::format("cannot update {:?} field on image {:?}", path, image.name));
      }
    }
    std::erase_if(updated.labels, [](const auto& kv) { return kv.second.empty(); });
    std::erase_if(updated.target.annotations, [](const auto& kv) { return kv.second.empty(); });
    BERTH_TRY(ValidateImage(updated));
    updated.created_at = created;
    updated.updated_at = Now();
    return WriteImage(txn, ns, updated);
  }));
  db_.NotifyMutation(false);
  return updated;
}

Status ImageStore::Delete(const Context& ctx, const std::string& name) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(ImageKey(ns, name)));
    if (!exists) return NotFound(fmt::format("image {:?}", name));
    return txn.DeleteTree(ImageKey(ns, name));
  }));
  db_.NotifyMutation(true);
  return Ok();
}

}  // namespace berth::metadata
