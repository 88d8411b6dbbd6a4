// Events through the real `ctr events` and our `berth events`, and the Events service over gRPC.
#include <fcntl.h>
#include <github.com/containerd/containerd/api/events/container.pb.h>
#include <github.com/containerd/containerd/api/events/content.pb.h>
#include <github.com/containerd/containerd/api/events/image.pb.h>
#include <github.com/containerd/containerd/api/events/namespace.pb.h>
#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;
namespace api = containerd::services::events::v1;
namespace ev = containerd::events;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "<date> <time> +0000 UTC <rest>" -> "<rest>", checking the timestamp is Go's time.String().
std::string WithoutTime(const std::string& line) {
  static const std::regex kTime(
      R"(^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{0,8}[1-9])? \+0000 UTC (.*)$)");
  std::smatch m;
  if (!std::regex_match(line, m, kTime)) return "BAD TIMESTAMP: " + line;
  return m[2];
}

// The lines of `out` without timestamps, leaving out the sync namespaces' events.
std::vector<std::string> Events(const std::string& out) {
  std::vector<std::string> events;
  for (const auto& line : Lines(out)) {
    if (line.find("\"sync-") != std::string::npos) continue;
    events.push_back(WithoutTime(line));
  }
  return events;
}

class EventsIT : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = Daemon::Create();
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }

  std::unique_ptr<Watch> CtrEvents(const std::vector<std::string>& filters = {}) {
    std::vector<std::string> argv = {"ctr", "-a", d_->Socket(), "events"};
    argv.insert(argv.end(), filters.begin(), filters.end());
    return Watch::Start(argv);
  }
  std::unique_ptr<Watch> BerthEvents(const std::vector<std::string>& filters = {}) {
    std::vector<std::string> argv = {BinPath("berth"), "-a", d_->Socket(), "events"};
    argv.insert(argv.end(), filters.begin(), filters.end());
    return Watch::Start(argv);
  }

  // Subscribers connect asynchronously: create namespaces sync-N until every subscriber has
  // printed one (its filters must let /namespaces/create of sync-N through).
  void Sync(const std::vector<Watch*>& subscribers) {
    for (int i = 0; i < 120; ++i) {
      std::string name = "sync-" + std::to_string(sync_++);
      auto r = d_->Ctr({"ns", "create", name});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      bool all = true;
      for (Watch* b : subscribers) {
        all = b->WaitFor("\"name\":\"" + name + "\"", 250ms) && all;
      }
      if (all) return;
    }
    FAIL() << "subscribers never saw a sync event";
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("unix:" + d_->Socket(), grpc::InsecureChannelCredentials());
  }

  grpc::Status Publish(const std::string& ns, const std::string& topic,
                       const google::protobuf::Message& event, const std::string& type_url = "") {
    auto stub = api::Events::NewStub(Channel());
    grpc::ClientContext ctx;
    if (!ns.empty()) ctx.AddMetadata("containerd-namespace", ns);
    api::PublishRequest req;
    req.set_topic(topic);
    req.mutable_event()->set_type_url(type_url.empty() ? event.GetDescriptor()->full_name()
                                                       : type_url);
    event.SerializeToString(req.mutable_event()->mutable_value());
    google::protobuf::Empty resp;
    return stub->Publish(&ctx, req, &resp);
  }

  std::unique_ptr<Daemon> d_;
  int sync_ = 0;
};

TEST_F(EventsIT, CtrSeesNamespaceEvents) {
  auto ctr = CtrEvents();
  ASSERT_NE(ctr, nullptr);
  Sync({ctr.get()});
  ASSERT_EQ(d_->Ctr({"ns", "create", "ns1", "a=b"}).exit_code, 0);
  ASSERT_EQ(d_->Ctr({"ns", "label", "ns1", "a=c"}).exit_code, 0);
  ASSERT_EQ(d_->Ctr({"ns", "create", "ns2"}, "other").exit_code, 0);
  auto rm = d_->Ctr({"ns", "rm", "ns1", "ns2"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  ASSERT_TRUE(ctr->WaitFor("/namespaces/delete {\"name\":\"ns2\"}")) << ctr->Out() << ctr->Err();
  EXPECT_EQ(Events(ctr->Out()),
            (std::vector<std::string>{
                R"(default /namespaces/create {"name":"ns1","labels":{"a":"b"}})",
                R"(default /namespaces/update {"name":"ns1","labels":{"a":"c"}})",
                R"(other /namespaces/create {"name":"ns2"})",
                // In the deleted namespace, not the caller's (as containerd).
                R"(ns1 /namespaces/delete {"name":"ns1"})",
                R"(ns2 /namespaces/delete {"name":"ns2"})",
            }))
      << ctr->Out();
}

TEST_F(EventsIT, BerthPrintsWhatCtrPrints) {
  auto ctr = CtrEvents();
  auto berth = BerthEvents();
  ASSERT_NE(ctr, nullptr);
  ASSERT_NE(berth, nullptr);
  Sync({ctr.get(), berth.get()});

  // Namespace events with text that Go's encoding/json escapes.
  ASSERT_EQ(d_->Ctr({"ns", "create", "esc", "html=<a&b>", "quote=\"\\", "uni=é\u2028", "tab=\t"})
                .exit_code,
            0);
  ASSERT_EQ(d_->Ctr({"ns", "rm", "esc"}).exit_code, 0);

  // Every other event type as a Go publisher would send it: omitempty, stdtime (set and unset),
  // nested messages, repeated messages, Any, a non-nullable custom type.
  ev::TaskExit exit;
  exit.set_container_id("c1");
  exit.set_id("c1");
  exit.set_pid(42);
  exit.mutable_exited_at()->set_seconds(1577934245);
  exit.mutable_exited_at()->set_nanos(500000000);
  ASSERT_TRUE(Publish("default", "/tasks/exit", exit).ok());
  ev::TaskDelete del;  // exited_at unset: Go's zero time; exit_status 0: omitted
  del.set_container_id("c1");
  del.set_pid(42);
  ASSERT_TRUE(Publish("default", "/tasks/delete", del).ok());
  ev::TaskCreate create;
  create.set_container_id("c1");
  create.set_bundle("/run/berth/c1");
  auto* m = create.add_rootfs();
  m->set_type("overlay");
  m->set_source("overlay");
  m->add_options("lowerdir=/a:/b");
  m->add_options("upperdir=/u");
  create.mutable_io()->set_stdout("/fifo/out");
  create.mutable_io()->set_terminal(true);
  create.set_pid(7);
  ASSERT_TRUE(Publish("default", "/tasks/create", create).ok());
  ev::ContainerCreate cc;
  cc.set_id("web");
  cc.set_image("docker.io/library/alpine:latest");
  cc.mutable_runtime()->set_name("io.containerd.runc.v2");
  cc.mutable_runtime()->mutable_options()->set_type_url("containerd.runc.v1.Options");
  cc.mutable_runtime()->mutable_options()->set_value(std::string("\x0a\x02hi\x10\x01", 6));
  ASSERT_TRUE(Publish("default", "/containers/create", cc).ok());
  ev::ContainerUpdate cu;
  cu.set_id("web");
  (*cu.mutable_labels())["b"] = "2";
  (*cu.mutable_labels())["a"] = "1";
  cu.set_snapshot_key("web-snap");
  ASSERT_TRUE(Publish("default", "/containers/update", cu).ok());
  ev::ContentDelete cd;  // digest: not omitempty
  ASSERT_TRUE(Publish("default", "/content/delete", cd).ok());
  containerd::services::images::v1::ImageCreate ic;
  ic.set_name("docker.io/library/alpine:latest");
  ASSERT_TRUE(Publish("default", "/images/create", ic).ok());
  ev::TaskOOM oom;  // everything empty: {}
  ASSERT_TRUE(Publish("default", "/tasks/oom", oom).ok());
  // Undecodable for both: an unknown type and a prefixed URL are skipped with a warning.
  ASSERT_TRUE(Publish("default", "/custom/unknown", oom, "example.Unknown").ok());
  ASSERT_TRUE(
      Publish("default", "/custom/prefixed", oom, "type.googleapis.com/containerd.events.TaskOOM")
          .ok());
  ev::NamespaceCreate last;
  last.set_name("done");
  ASSERT_TRUE(Publish("default", "/test/done", last).ok());

  ASSERT_TRUE(ctr->WaitFor("/test/done")) << ctr->Out() << ctr->Err();
  ASSERT_TRUE(berth->WaitFor("/test/done")) << berth->Out() << berth->Err();
  std::vector<std::string> want = {
      R"(default /namespaces/create {"name":"esc","labels":{"html":"\u003ca\u0026b\u003e","quote":"\"\\","tab":"\t","uni":"é\u2028"}})",
      R"(esc /namespaces/delete {"name":"esc"})",
      R"(default /tasks/exit {"container_id":"c1","id":"c1","pid":42,"exited_at":"2020-01-02T03:04:05.5Z"})",
      R"(default /tasks/delete {"container_id":"c1","pid":42,"exited_at":"0001-01-01T00:00:00Z"})",
      R"(default /tasks/create {"container_id":"c1","bundle":"/run/berth/c1","rootfs":[{"type":"overlay","source":"overlay","options":["lowerdir=/a:/b","upperdir=/u"]}],"io":{"stdout":"/fifo/out","terminal":true},"pid":7})",
      R"(default /containers/create {"id":"web","image":"docker.io/library/alpine:latest","runtime":{"name":"io.containerd.runc.v2","options":{"type_url":"containerd.runc.v1.Options","value":"CgJoaRAB"}}})",
      R"(default /containers/update {"id":"web","labels":{"a":"1","b":"2"},"snapshot_key":"web-snap"})",
      R"(default /content/delete {"digest":""})",
      R"(default /images/create {"name":"docker.io/library/alpine:latest"})",
      R"(default /tasks/oom {})",
      R"(default /test/done {"name":"done"})",
  };
  EXPECT_EQ(Events(ctr->Out()), want) << ctr->Out();
  EXPECT_EQ(Events(berth->Out()), want) << berth->Out();
  // Both warn about the two events they cannot decode.
  EXPECT_NE(ctr->Err().find("cannot unmarshal an event from Any"), std::string::npos);
  EXPECT_NE(berth->Err().find("type with url example.Unknown: not found"), std::string::npos)
      << berth->Err();
  EXPECT_NE(berth->Err().find("type.googleapis.com/containerd.events.TaskOOM"), std::string::npos)
      << berth->Err();
}

TEST_F(EventsIT, Filters) {
  auto ctr = CtrEvents({"topic==\"/namespaces/create\""});
  auto berth = BerthEvents({"event.name==keep", "event.name~=^sync-"});  // OR-ed
  auto by_ns = BerthEvents({"namespace==other", "event.name~=^sync-"});
  ASSERT_NE(ctr, nullptr);
  ASSERT_NE(berth, nullptr);
  ASSERT_NE(by_ns, nullptr);
  Sync({ctr.get(), berth.get(), by_ns.get()});
  ASSERT_EQ(d_->Ctr({"ns", "create", "drop", "team=blue"}).exit_code, 0);
  ASSERT_EQ(d_->Ctr({"ns", "create", "keep", "team=red"}, "other").exit_code, 0);
  ASSERT_EQ(d_->Ctr({"ns", "label", "keep", "team=green"}).exit_code, 0);
  ASSERT_EQ(d_->Ctr({"ns", "rm", "drop", "keep"}, "other").exit_code, 0);
  // Delivery is in one total order: once every subscriber has seen the next sync event, it has
  // seen everything before it that matched.
  Sync({ctr.get(), berth.get(), by_ns.get()});
  EXPECT_EQ(Events(ctr->Out()),
            (std::vector<std::string>{
                R"(default /namespaces/create {"name":"drop","labels":{"team":"blue"}})",
                R"(other /namespaces/create {"name":"keep","labels":{"team":"red"}})",
            }))
      << ctr->Out();
  EXPECT_EQ(Events(berth->Out()),
            (std::vector<std::string>{
                R"(other /namespaces/create {"name":"keep","labels":{"team":"red"}})",
                R"(default /namespaces/update {"name":"keep","labels":{"team":"green"}})",
                R"(keep /namespaces/delete {"name":"keep"})",
            }))
      << berth->Out();
  // Deletes are published in the deleted namespace, not the caller's "other".
  EXPECT_EQ(Events(by_ns->Out()),
            (std::vector<std::string>{
                R"(other /namespaces/create {"name":"keep","labels":{"team":"red"}})",
            }))
      << by_ns->Out();
}

TEST_F(EventsIT, BadFilterFailsTheSubscription) {
  auto r = Exec({"ctr", "-a", d_->Socket(), "events", "topic=="}, "", 30s);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("failed parsing subscription filters"), std::string::npos) << r.err;
  auto b = d_->Berth({"events", "topic=="});
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.err.find("failed parsing subscription filters"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("invalid argument"), std::string::npos) << b.err;
}

TEST_F(EventsIT, PublishAndForwardOverGrpc) {
  auto channel = Channel();
  auto stub = api::Events::NewStub(channel);
  grpc::ClientContext sub_ctx;
  api::SubscribeRequest sub_req;
  sub_req.add_filters("topic~=\"^/test/\"");
  auto reader = stub->Subscribe(&sub_ctx, sub_req);
  reader->WaitForInitialMetadata();  // the server sends headers once subscribed

  ev::NamespaceCreate event;
  event.set_name("x");
  // Publish needs the namespace, and a valid topic.
  grpc::Status st = Publish("", "/test/a", event);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(),
            "failed publishing event: namespace is required: failed precondition");
  st = Publish("default", "/test//a", event);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "envelope topic \"/test//a\": failed validation on component \"\": identifier must "
            "not be empty: invalid argument");
  ASSERT_TRUE(Publish("ns9", "/test/published", event).ok());

  auto forward = [&](const api::Envelope& env) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("containerd-namespace", "default");
    api::ForwardRequest req;
    *req.mutable_envelope() = env;
    google::protobuf::Empty resp;
    return stub->Forward(&ctx, req, &resp);
  };
  api::Envelope env;
  env.set_namespace_("elsewhere");
  env.set_topic("/test/forwarded");
  env.mutable_event()->set_type_url("containerd.events.NamespaceCreate");
  event.SerializeToString(env.mutable_event()->mutable_value());
  st = forward(env);  // no timestamp
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "timestamp must be set on forwarded event: invalid argument");
  env.mutable_timestamp()->set_seconds(-62135596800);  // Go's zero time: unset too
  EXPECT_EQ(forward(env).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  api::Envelope bad_ns = env;
  bad_ns.set_namespace_("-bad");
  bad_ns.mutable_timestamp()->set_seconds(1);
  st = forward(bad_ns);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      st.error_message().rfind("event envelope has invalid namespace: identifier \"-bad\"", 0), 0u)
      << st.error_message();
  env.mutable_timestamp()->set_seconds(1577934245);
  env.mutable_timestamp()->set_nanos(6);
  st = forward(env);
  ASSERT_TRUE(st.ok()) << st.error_message();

  api::Envelope got;
  ASSERT_TRUE(reader->Read(&got));
  EXPECT_EQ(got.namespace_(), "ns9");
  EXPECT_EQ(got.topic(), "/test/published");
  EXPECT_EQ(got.event().type_url(), "containerd.events.NamespaceCreate");
  EXPECT_GT(got.timestamp().seconds(), 1577934245);  // server time
  ASSERT_TRUE(reader->Read(&got));
  EXPECT_EQ(got.namespace_(), "elsewhere");  // the envelope's, not the caller's
  EXPECT_EQ(got.topic(), "/test/forwarded");
  EXPECT_EQ(got.timestamp().seconds(), 1577934245);  // kept as forwarded
  EXPECT_EQ(got.timestamp().nanos(), 6);
  sub_ctx.TryCancel();
  while (reader->Read(&got)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(EventsIT, DaemonStopsPromptlyWithSubscribersConnected) {
  auto ctr = CtrEvents();
  auto berth = BerthEvents();
  ASSERT_NE(ctr, nullptr);
  ASSERT_NE(berth, nullptr);
  Sync({ctr.get(), berth.get()});
  // SIGTERM: Stop() returns -1 if berthd had to be SIGKILLed after 15 s.
  EXPECT_EQ(d_->Stop(), 0) << d_->Log();
  // The subscribers see their stream end and exit with an error, as against containerd.
  auto ctr_exit = ctr->Wait(30s);
  ASSERT_TRUE(ctr_exit.has_value());
  EXPECT_EQ(*ctr_exit, 1) << ctr->Err();
  auto berth_exit = berth->Wait(30s);
  ASSERT_TRUE(berth_exit.has_value());
  EXPECT_EQ(*berth_exit, 1) << berth->Err();
  // ... naming the same cause. ctr prints the stream's raw gRPC error ("rpc error: code =
  // Canceled desc = <message>"); berth prints the message with its class, as for every error.
  auto last_line = [](const std::string& err) {
    std::string text = err;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text.substr(text.rfind('\n') + 1);
  };
  std::string theirs = last_line(ctr->Err());
  ASSERT_TRUE(theirs.starts_with("ctr: ")) << ctr->Err();
  if (auto desc = theirs.find("desc = "); desc != std::string::npos)
    theirs = theirs.substr(desc + 7);
  else
    theirs = theirs.substr(5);
  std::string ours = last_line(berth->Err());
  EXPECT_TRUE(ours.starts_with("berth: " + theirs)) << ours << " vs " << ctr->Err();
}

}  // namespace
}  // namespace berth::testing
