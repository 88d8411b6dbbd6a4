#include "services/utf8_guard.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/common.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace berth::services {
namespace {

namespace pb = google::protobuf;

bool ValidUtf8(const std::string& s) {
  return pb::internal::IsStructurallyValidUTF8(s.data(), static_cast<int>(s.size()));
}

std::optional<std::string> Walk(const pb::Message& msg, const std::string& prefix, int depth) {
  // Requests are never this deep; protobuf's own parse limit is 100.
  if (depth > 100) return std::nullopt;
  const pb::Reflection* r = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(msg, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    const std::string name = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->type() == pb::FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(msg, f); ++i) {
          std::string scratch;
          if (!ValidUtf8(r->GetRepeatedStringReference(msg, f, i, &scratch))) {
            return fmt::format("{}[{}]", name, i);
          }
        }
      } else {
        std::string scratch;
        if (!ValidUtf8(r->GetStringReference(msg, f, &scratch))) return name;
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_map()) {
        // Map entries: name the map and the entry's key when the key itself is valid.
        const pb::FieldDescriptor* key = f->message_type()->map_key();
        for (int i = 0; i < r->FieldSize(msg, f); ++i) {
          const pb::Message& entry = r->GetRepeatedMessage(msg, f, i);
          auto bad = Walk(entry, "", depth + 1);
          if (!bad) continue;
          std::string label = "?";
          if (key->type() == pb::FieldDescriptor::TYPE_STRING) {
            std::string scratch;
            const std::string& k = entry.GetReflection()->GetStringReference(entry, key, &scratch);
            if (ValidUtf8(k)) label = fmt::format("{:?}", k);
          }
          return fmt::format("{}[{}]{}", name, label, *bad == "key" ? " (key)" : "");
        }
      } else if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(msg, f); ++i) {
          if (auto bad = Walk(r->GetRepeatedMessage(msg, f, i), fmt::format("{}[{}]", name, i),
                              depth + 1)) {
            return bad;
          }
        }
      } else if (auto bad = Walk(r->GetMessage(msg, f), name, depth + 1)) {
        return bad;
      }
    }
  }
  return std::nullopt;
}

// What the interceptor found, per call (the key is the call's server context).
class Findings {
 public:
  void Set(const grpc::ServerContextBase* rpc, Error e) {
    std::lock_guard lock(mu_);
    errors_.insert_or_assign(rpc, std::move(e));
    size_.store(errors_.size(), std::memory_order_release);
  }
  void Clear(const grpc::ServerContextBase* rpc) {
    std::lock_guard lock(mu_);
    errors_.erase(rpc);
    size_.store(errors_.size(), std::memory_order_release);
  }
  std::optional<Error> Get(const grpc::ServerContextBase* rpc) {
    // Every call asks; almost none has a finding: no lock then. (A finding is made on the
    // thread that then runs the call's handler, or before its next read completes.)
    if (size_.load(std::memory_order_acquire) == 0) return std::nullopt;
    std::lock_guard lock(mu_);
    auto it = errors_.find(rpc);
    if (it == errors_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::unordered_map<const grpc::ServerContextBase*, Error> errors_;
  std::atomic<size_t> size_{0};
};

Findings& TheFindings() {
  static auto* f = new Findings();  // never destroyed: calls may end during exit
  return *f;
}

class Utf8Guard final : public grpc::experimental::Interceptor {
 public:
  Utf8Guard(grpc::experimental::ServerRpcInfo* info, const pb::Descriptor* input)
      : rpc_(info->server_context()), input_(input) {}
  ~Utf8Guard() override {
    if (found_) TheFindings().Clear(rpc_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // The generated handler's request type, whose descriptor is input_ (single inheritance
      // from Message: the same address).
      if (auto* msg = static_cast<pb::Message*>(methods->GetRecvMessage());
          msg != nullptr && msg->GetDescriptor() == input_) {
        if (auto bad = FindInvalidUtf8(*msg)) {
          found_ = true;
          TheFindings().Set(
              rpc_, InvalidArgument(fmt::format("invalid request: field {} ({}) is not valid UTF-8",
                                                *bad, input_->full_name())));
        } else if (found_) {
          found_ = false;
          TheFindings().Clear(rpc_);
        }
      }
    }
    methods->Proceed();
  }

 private:
  const grpc::ServerContextBase* rpc_;
  const pb::Descriptor* input_;
  bool found_ = false;
};

class Utf8GuardFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // "/pkg.Service/Method" -> the method in the generated pool; services that are not
    // generated from it (gRPC's own health check) are left alone.
    std::string name = info->method() != nullptr ? info->method() : "";
    if (name.size() < 2 || name[0] != '/') return nullptr;
    name.erase(0, 1);
    auto slash = name.find('/');
    if (slash == std::string::npos) return nullptr;
    name[slash] = '.';
    const pb::MethodDescriptor* m = pb::DescriptorPool::generated_pool()->FindMethodByName(name);
    if (m == nullptr) return nullptr;
    return new Utf8Guard(info, m->input_type());
  }
};

}  // namespace

std::optional<std::string> FindInvalidUtf8(const pb::Message& msg) { return Walk(msg, "", 0); }

std::optional<Error> InvalidUtf8Error(const grpc::ServerContextBase* rpc) {
  return TheFindings().Get(rpc);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewUtf8GuardFactory() {
  return std::make_unique<Utf8GuardFactory>();
}

}  // namespace berth::services
