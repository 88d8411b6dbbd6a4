#include "events/exchange.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "events/fields.h"
#include "events/types.h"

namespace berth::events {
namespace {

using namespace std::chrono_literals;

containerd::events::NamespaceCreate NsCreate(const std::string& name,
                                             std::map<std::string, std::string> labels = {}) {
  containerd::events::NamespaceCreate ev;
  ev.set_name(name);
  ev.mutable_labels()->insert(labels.begin(), labels.end());
  return ev;
}

Context Ns(const std::string& ns) { return Context{.ns = ns}; }

// The names of the NamespaceCreate events queued right now (stops at the first non-event).
std::vector<std::string> Drain(Subscription& sub) {
  std::vector<std::string> names;
  for (;;) {
    auto next = sub.TryNext();
    if (!next || !next->has_value()) return names;
    auto decoded = UnmarshalAny((*next)->event);
    names.push_back(decoded ? MessageField(*decoded, {"name"}).value_or("?") : "?");
  }
}

std::unique_ptr<Subscription> MustSubscribe(Exchange& ex, std::vector<std::string> filters = {},
                                            std::function<void()> on_ready = {}) {
  auto sub = ex.Subscribe(filters, std::move(on_ready));
  EXPECT_TRUE(sub) << sub.error().ToString();
  return sub ? std::move(*sub) : nullptr;
}

TEST(EventsTopic, ContainerdRules) {
  EXPECT_TRUE(ValidateTopic("/namespaces/create"));
  EXPECT_TRUE(ValidateTopic("/tasks/exec-added"));
  EXPECT_TRUE(ValidateTopic("/a"));
  EXPECT_EQ(ValidateTopic("").error().ToString(), "must not be empty: invalid argument");
  EXPECT_EQ(ValidateTopic("tasks").error().ToString(), "must start with '/': invalid argument");
  EXPECT_EQ(ValidateTopic("/").error().ToString(),
            "must have at least one component: invalid argument");
  EXPECT_EQ(ValidateTopic("/a//b").error().ToString(),
            "failed validation on component \"\": identifier must not be empty: invalid argument");
  EXPECT_FALSE(ValidateTopic("/a/"));
  EXPECT_FALSE(ValidateTopic("/a/b c"));
  EXPECT_FALSE(ValidateTopic("/a/-b"));
}

TEST(EventsEnvelope, ForwardValidation) {
  Exchange ex;
  Envelope env{
      .timestamp = Now(), .ns = "default", .topic = "/x/y", .event = MarshalAny(NsCreate("a"))};
  EXPECT_TRUE(ex.Forward(env));
  Envelope bad_ns = env;
  bad_ns.ns = "";
  auto s = ex.Forward(bad_ns);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().ToString(),
            "event envelope has invalid namespace: identifier must not be empty: invalid argument");
  Envelope bad_topic = env;
  bad_topic.topic = "x";
  s = ex.Forward(bad_topic);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().ToString(), "envelope topic \"x\": must start with '/': invalid argument");
  Envelope no_time = env;
  no_time.timestamp = Timestamp{};
  s = ex.Forward(no_time);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().ToString(), "timestamp must be set on forwarded event: invalid argument");
}

TEST(EventsExchange, PublishBuildsTheEnvelope) {
  Exchange ex;
  auto sub = MustSubscribe(ex);
  Timestamp before = Now();
  ASSERT_TRUE(ex.Publish(Ns("ns1"), "/namespaces/create", NsCreate("ns1", {{"a", "b"}})));
  auto env = sub->Next(5s);
  ASSERT_TRUE(env && env->has_value());
  const Envelope& e = **env;
  EXPECT_EQ(e.ns, "ns1");
  EXPECT_EQ(e.topic, "/namespaces/create");
  EXPECT_EQ(e.event.type_url(), "containerd.events.NamespaceCreate");  // bare: Go looks it up
  EXPECT_GE(e.timestamp, before);
  EXPECT_LE(e.timestamp, Now());
  containerd::events::NamespaceCreate decoded;
  ASSERT_TRUE(decoded.ParseFromString(e.event.value()));
  EXPECT_EQ(decoded.name(), "ns1");
  EXPECT_EQ(decoded.labels().at("a"), "b");
}

TEST(EventsExchange, PublishOfAnAnyKeepsIt) {
  Exchange ex;
  auto sub = MustSubscribe(ex);
  google::protobuf::Any any;
  any.set_type_url("example.Custom");
  any.set_value("raw");
  ASSERT_TRUE(ex.Publish(Ns("default"), "/custom/thing", any));
  auto env = sub->Next();
  ASSERT_TRUE(env);
  EXPECT_EQ(env->event.type_url(), "example.Custom");
  EXPECT_EQ(env->event.value(), "raw");
}

TEST(EventsExchange, PublishErrors) {
  Exchange ex;
  auto s = ex.Publish(Context{}, "/namespaces/create", NsCreate("x"));
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kFailedPrecondition));
  EXPECT_EQ(s.error().ToString(),
            "failed publishing event: namespace is required: failed precondition");
  s = ex.Publish(Ns("default"), "namespaces", NsCreate("x"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().ToString(),
            "envelope topic \"namespaces\": must start with '/': invalid argument");
}

TEST(EventsExchange, FanOutToEverySubscriberFromEveryNamespace) {
  Exchange ex;
  auto a = MustSubscribe(ex);
  auto b = MustSubscribe(ex);
  ASSERT_TRUE(ex.Publish(Ns("one"), "/namespaces/create", NsCreate("x")));
  ASSERT_TRUE(ex.Publish(Ns("two"), "/namespaces/create", NsCreate("y")));
  EXPECT_EQ(Drain(*a), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(Drain(*b), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(ex.Subscribers(), 2u);
}

TEST(EventsExchange, BadFilterIsInvalidArgument) {
  Exchange ex;
  auto sub = ex.Subscribe({"topic=="});
  ASSERT_FALSE(sub);
  EXPECT_TRUE(sub.error().Is(Errc::kInvalidArgument));
  EXPECT_EQ(
      sub.error().What().rfind("failed parsing subscription filters: filters: parse error", 0), 0u)
      << sub.error().What();
  EXPECT_EQ(ex.Subscribers(), 0u);
}

struct FilterCase {
  std::string filter;
  std::vector<std::string> want;  // names of the events that match
};

TEST(EventsExchange, FiltersOverTopicNamespaceAndEventFields) {
  const std::vector<FilterCase> cases = {
      {"topic==\"/namespaces/create\"", {"a", "c"}},
      {"topic~=/namespaces/", {"a", "b", "c"}},
      {"namespace==ns2", {"b"}},
      {"namespace!=ns2", {"a", "c", "d"}},
      {"event.name==c", {"c"}},
      {"event.name", {"a", "b", "c"}},  // present: the NamespaceCreate/Update events
      {"event.labels.team==red", {"a"}},
      {"event.labels.\"x.y\"==1", {"b"}},
      {"event.labels.x.y==1", {"b"}},  // the rest of the path is the key
      {"event.labels.team", {"a", "c"}},
      {"event.labels", {}},  // key "" is absent
      {"event.labels.nope!=z", {"a", "b", "c", "d"}},
      {"event.name==a,namespace==ns1", {"a"}},  // AND
      {"event.name==a,namespace==ns2", {}},
      {"topic==\"/custom/bytes\"", {"d"}},
      {"event.type_url", {}},  // d's event is an unknown type: no event.* fields
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.filter);
    Exchange ex;
    auto sub = MustSubscribe(ex, {c.filter});
    ASSERT_NE(sub, nullptr);
    auto tagged = MustSubscribe(ex);  // sees all, to name "d"
    ASSERT_TRUE(ex.Publish(Ns("ns1"), "/namespaces/create", NsCreate("a", {{"team", "red"}})));
    containerd::events::NamespaceUpdate upd;
    upd.set_name("b");
    (*upd.mutable_labels())["x.y"] = "1";
    ASSERT_TRUE(ex.Publish(Ns("ns2"), "/namespaces/update", upd));
    ASSERT_TRUE(ex.Publish(Ns("ns3"), "/namespaces/create", NsCreate("c", {{"team", "blue"}})));
    google::protobuf::Any unknown;
    unknown.set_type_url("example.Unknown");
    ASSERT_TRUE(ex.Publish(Ns("ns4"), "/custom/bytes", unknown));
    std::vector<std::string> got;
    for (const auto& name : Drain(*sub)) got.push_back(name == "?" ? "d" : name);
    EXPECT_EQ(got, c.want);
  }
}

TEST(EventsExchange, FiltersAreOredAcrossStrings) {
  Exchange ex;
  auto sub = MustSubscribe(ex, {"event.name==a", "namespace==ns3"});
  ASSERT_TRUE(ex.Publish(Ns("ns1"), "/namespaces/create", NsCreate("a")));
  ASSERT_TRUE(ex.Publish(Ns("ns2"), "/namespaces/create", NsCreate("b")));
  ASSERT_TRUE(ex.Publish(Ns("ns3"), "/namespaces/create", NsCreate("c")));
  EXPECT_EQ(Drain(*sub), (std::vector<std::string>{"a", "c"}));
}

TEST(EventsFields, NestedMessagesAnyBoolsAndUnhandledTypes) {
  containerd::events::ContainerCreate cc;
  cc.set_id("web");
  cc.mutable_runtime()->set_name("io.containerd.runc.v2");
  // An Any holding a fieldpath-enabled event resolves through it.
  *cc.mutable_runtime()->mutable_options() = MarshalAny(NsCreate("inner", {{"k", "v"}}));
  Envelope env{
      .timestamp = Now(), .ns = "default", .topic = "/containers/create", .event = MarshalAny(cc)};
  EnvelopeFields f(env);
  EXPECT_EQ(f.Field({"event", "id"}), "web");
  EXPECT_EQ(f.Field({"event", "runtime", "name"}), "io.containerd.runc.v2");
  EXPECT_EQ(f.Field({"event", "runtime", "options", "name"}), "inner");
  EXPECT_EQ(f.Field({"event", "runtime", "options", "labels", "k"}), "v");
  EXPECT_EQ(f.Field({"event", "runtime"}), std::nullopt);
  EXPECT_EQ(f.Field({"event", "image"}), std::nullopt);  // "" is absent
  EXPECT_EQ(f.Field({"event", "id", "more"}), "web");    // as Go: the rest is ignored
  EXPECT_EQ(f.Field({"event"}), std::nullopt);
  EXPECT_EQ(f.Field({"timestamp"}), std::nullopt);
  EXPECT_EQ(f.Field({"namespace"}), "default");
  EXPECT_EQ(f.Field({"topic"}), "/containers/create");

  containerd::events::TaskCreate tc;
  tc.set_container_id("c1");
  tc.set_pid(42);
  tc.mutable_io()->set_stdout("/fifo");
  tc.add_rootfs()->set_type("overlay");
  Envelope task{
      .timestamp = Now(), .ns = "default", .topic = "/tasks/create", .event = MarshalAny(tc)};
  EnvelopeFields t(task);
  EXPECT_EQ(t.Field({"event", "container_id"}), "c1");
  EXPECT_EQ(t.Field({"event", "io", "terminal"}), "false");  // bools are always present
  EXPECT_EQ(t.Field({"event", "io", "stdout"}), "/fifo");
  EXPECT_EQ(t.Field({"event", "pid"}), std::nullopt);     // numbers are not filterable
  EXPECT_EQ(t.Field({"event", "rootfs"}), std::nullopt);  // nor repeated fields

  containerd::events::TaskExit te;
  te.set_container_id("c1");
  te.mutable_exited_at()->set_seconds(5);
  Envelope exit{
      .timestamp = Now(), .ns = "default", .topic = "/tasks/exit", .event = MarshalAny(te)};
  EnvelopeFields x(exit);
  EXPECT_EQ(x.Field({"event", "exited_at"}), std::nullopt);  // nor timestamps

  Envelope prefixed = exit;
  prefixed.event.set_type_url("type.googleapis.com/containerd.events.TaskExit");
  EnvelopeFields p(prefixed);
  EXPECT_EQ(p.Field({"event", "container_id"}), std::nullopt);  // exact URL only, as Go
}

TEST(EventsExchange, SubscribersSeeEnvelopesInPublishOrder) {
  Exchange ex;
  auto sub = MustSubscribe(ex);
  constexpr int kCount = 2000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(ex.Publish(Ns("default"), "/seq/n", NsCreate(std::to_string(i))));
  }
  auto names = Drain(*sub);
  ASSERT_EQ(names.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(names[i], std::to_string(i));
}

TEST(EventsExchange, CloseUnsubscribes) {
  Exchange ex;
  auto sub = MustSubscribe(ex);
  auto other = MustSubscribe(ex);
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("x")));
  sub->Close();
  EXPECT_EQ(ex.Subscribers(), 1u);
  auto next = sub->TryNext();
  ASSERT_FALSE(next);  // queued envelopes are discarded
  EXPECT_TRUE(next.error().Is(Errc::kCanceled));
  sub->Close();  // idempotent
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("y")));
  EXPECT_EQ(Drain(*other), (std::vector<std::string>{"x", "y"}));
  other.reset();  // destroying unsubscribes too
  EXPECT_EQ(ex.Subscribers(), 0u);
}

TEST(EventsExchange, SlowSubscriberIsDroppedWithoutBlockingOthers) {
  Exchange ex(ExchangeOptions{.max_queued = 3});
  auto slow = MustSubscribe(ex);
  auto fast = MustSubscribe(ex);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ex.Publish(Ns("default"), "/seq/n", NsCreate(std::to_string(i))));
    if (i < 4) {
      EXPECT_EQ(Drain(*fast).size(), 1u);
    }
  }
  EXPECT_EQ(ex.Subscribers(), 1u);  // the slow one left the exchange
  // What was queued before the overflow is still delivered, then the end.
  for (int i = 0; i < 3; ++i) {
    auto next = slow->Next();
    ASSERT_TRUE(next) << next.error().ToString();
    auto decoded = UnmarshalAny(next->event);
    ASSERT_NE(decoded, nullptr);
    EXPECT_EQ(MessageField(*decoded, {"name"}), std::to_string(i));
  }
  auto end = slow->Next();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().Is(Errc::kResourceExhausted)) << end.error().ToString();
  EXPECT_EQ(Drain(*fast), (std::vector<std::string>{"4"}));
}

TEST(EventsExchange, ConcurrentPublishersOneTotalOrder) {
  Exchange ex(ExchangeOptions{.max_queued = 100000});
  auto a = MustSubscribe(ex);
  auto b = MustSubscribe(ex, {"topic~=/p/"});
  constexpr int kThreads = 4;
  constexpr int kEach = 500;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&ex, t] {
        for (int i = 0; i < kEach; ++i) {
          auto s = ex.Publish(Ns("ns" + std::to_string(t)), "/p/" + std::to_string(t),
                              NsCreate(std::to_string(t) + ":" + std::to_string(i)));
          EXPECT_TRUE(s);
        }
      });
    }
  }
  auto got_a = Drain(*a);
  auto got_b = Drain(*b);
  ASSERT_EQ(got_a.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(got_a, got_b);  // every subscriber sees the same order
  std::map<std::string, int> last;
  for (const auto& name : got_a) {
    auto colon = name.find(':');
    std::string t = name.substr(0, colon);
    int i = std::stoi(name.substr(colon + 1));
    auto it = last.find(t);
    EXPECT_EQ(i, it == last.end() ? 0 : it->second + 1) << name;  // each publisher in order
    last[t] = i;
  }
}

TEST(EventsExchange, OnReadyIsCalledAndCloseWaitsForIt) {
  Exchange ex;
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  std::atomic<bool> in_callback{false};
  std::atomic<int> seq{0};
  int callback_done_at = -1;
  auto sub = MustSubscribe(ex, {}, [&] {
    if (calls.fetch_add(1) == 1) {
      in_callback = true;
      while (!release) std::this_thread::yield();
      callback_done_at = seq.fetch_add(1);
    }
  });
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("1")));
  EXPECT_EQ(calls.load(), 1);
  std::jthread publisher([&] { EXPECT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("2"))); });
  while (!in_callback) std::this_thread::yield();
  int close_returned_at = -1;
  std::jthread closer([&] {
    sub->Close();
    close_returned_at = seq.fetch_add(1);
  });
  release = true;
  closer.join();
  publisher.join();
  EXPECT_EQ(callback_done_at, 0);
  EXPECT_EQ(close_returned_at, 1);
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("3")));
  EXPECT_EQ(calls.load(), 2);  // never called after Close
}

TEST(EventsExchange, CloseFromInsideOnReadyDoesNotWaitForItself) {
  Exchange ex;
  std::unique_ptr<Subscription> sub;
  int calls = 0;
  sub = MustSubscribe(ex, {}, [&] {
    ++calls;
    sub->Close();
  });
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("1")));
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("2")));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ex.Subscribers(), 0u);
}

TEST(EventsExchange, ShutdownEndsSubscriptionsAndRefusesNewOnes) {
  Exchange ex;
  std::atomic<int> calls{0};
  auto sub = MustSubscribe(ex, {}, [&] { ++calls; });
  ASSERT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("1")));
  std::jthread waiter([&] {
    auto first = sub->Next();
    EXPECT_TRUE(first);
    auto end = sub->Next();  // blocks until Shutdown
    ASSERT_FALSE(end);
    EXPECT_TRUE(end.error().Is(Errc::kCanceled)) << end.error().ToString();
  });
  ex.Shutdown();
  waiter.join();
  EXPECT_EQ(calls.load(), 2);  // the envelope, then the end
  auto again = ex.Subscribe({});
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().Is(Errc::kUnavailable));
  EXPECT_TRUE(ex.Publish(Ns("default"), "/a/b", NsCreate("late")));  // dropped, not an error
}

TEST(EventsExchange, SubscriptionMayOutliveTheExchange) {
  auto ex = std::make_unique<Exchange>();
  auto sub = MustSubscribe(*ex);
  ex.reset();
  auto next = sub->Next();
  ASSERT_FALSE(next);
  EXPECT_TRUE(next.error().Is(Errc::kCanceled));
  sub.reset();
}

}  // namespace
}  // namespace berth::events
