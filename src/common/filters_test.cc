#include "common/filters.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

// Expected error texts were produced by containerd 1.6's filters package itself.

namespace berth::filters {
namespace {

using Map = std::map<std::string, std::string>;

struct Object {
  Map fields;  // always has "id"
  Map labels;
};

const std::vector<Object>& Corpus() {
  static const auto* const kCorpus = new std::vector<Object>{
      {{{"id", "foo1"}, {"name", "foo"}}, {{"foo", "true"}}},
      {{{"id", "bar1"}, {"name", "bar"}}, {}},
      {{{"id", "foo2"}, {"name", "foo"}}, {{"foo", "present"}, {"more complex label", "present"}}},
      {{{"id", "bar2"}, {"name", "bar"}}, {{"bar", "true"}}},
      {{{"id", "img"}, {"name", "docker.io/library/a:1"}}, {{"a.b", "c"}, {"my key", "v v"}}},
      {{{"id", "other"}, {"name", ""}, {"other", "too complex, yo"}},
       {{"foo", "omg_asdf.asdf-qwer"}, {"quote\"back\\", "q"}}},
      {{{"id", "topic"}, {"name", "a\nb"}, {"topic", "/tasks/exit"}}, {{"cow", "牛"}}},
  };
  return *kCorpus;
}

// Ids of the corpus objects a filter set matches.
std::vector<std::string> Matching(const Filter& filter) {
  std::vector<std::string> ids;
  for (const Object& object : Corpus()) {
    if (filter.Match(MakeAdaptor(object.fields, {{"labels", &object.labels}}))) {
      ids.push_back(object.fields.at("id"));
    }
  }
  return ids;
}

std::vector<std::string> Matching(std::string_view one_filter) {
  Result<Filter> filter = Parse(one_filter);
  EXPECT_TRUE(filter.has_value()) << one_filter << ": " << filter.error().ToString();
  return filter ? Matching(*filter) : std::vector<std::string>{"<parse error>"};
}

// The error text of a filter that must not parse.
std::string ParseError(std::string_view one_filter) {
  Result<Filter> filter = Parse(one_filter);
  if (filter) {
    return "<parsed>";
  }
  EXPECT_TRUE(filter.error().Is(Errc::kInvalidArgument));
  return filter.error().What();
}

using Ids = std::vector<std::string>;
const Ids kAll = {"foo1", "bar1", "foo2", "bar2", "img", "other", "topic"};

// The single selector of a one-selector filter.
Selector OnlySelector(std::string_view one_filter) {
  Result<Filter> filter = Parse(one_filter);
  EXPECT_TRUE(filter.has_value()) << one_filter;
  if (!filter || filter->AnyOf().size() != 1 || filter->AnyOf()[0].size() != 1) {
    ADD_FAILURE() << one_filter << " is not one selector";
    return {};
  }
  return filter->AnyOf()[0][0];
}

// ---- match-all cases

TEST(FiltersTest, EmptyStringMatchesAll) {
  Result<Filter> filter = Parse("");
  ASSERT_TRUE(filter.has_value());
  EXPECT_TRUE(filter->MatchesAll());
  EXPECT_TRUE(filter->AnyOf().empty());
  EXPECT_EQ(Matching(*filter), kAll);
}

TEST(FiltersTest, DefaultFilterMatchesAll) {
  Filter filter;
  EXPECT_TRUE(filter.MatchesAll());
  EXPECT_EQ(Matching(filter), kAll);
}

TEST(FiltersTest, ParseAllWithoutFiltersMatchesAll) {
  Result<Filter> filter = ParseAll({});
  ASSERT_TRUE(filter.has_value());
  EXPECT_TRUE(filter->MatchesAll());
  EXPECT_EQ(Matching(*filter), kAll);
}

TEST(FiltersTest, ParseAllWithAnEmptyStringMatchesAll) {
  Result<Filter> filter = ParseAll({"name==nothing", ""});
  ASSERT_TRUE(filter.has_value());
  EXPECT_TRUE(filter->MatchesAll());
  EXPECT_EQ(Matching(*filter), kAll);
}

// ---- operators and combinations

TEST(FiltersTest, PresenceOfField) {
  Result<Filter> filter = Parse("name");
  ASSERT_TRUE(filter.has_value());
  EXPECT_FALSE(filter->MatchesAll());
  // "other" has an empty name: absent under containerd's len(v) > 0 rule.
  EXPECT_EQ(Matching(*filter), (Ids{"foo1", "bar1", "foo2", "bar2", "img", "topic"}));
  EXPECT_EQ(Matching("other"), Ids{"other"});
  EXPECT_EQ(Matching("nosuchfield"), Ids{});
}

TEST(FiltersTest, PresenceOfLabel) {
  EXPECT_EQ(Matching("labels.foo"), (Ids{"foo1", "foo2", "other"}));
  EXPECT_EQ(OnlySelector("labels.foo").op, Operator::kPresent);
}

TEST(FiltersTest, Equal) {
  EXPECT_EQ(Matching("name==bar"), (Ids{"bar1", "bar2"}));
  EXPECT_EQ(Matching("labels.foo==true"), Ids{"foo1"});
  EXPECT_EQ(Matching("labels.nosuch==true"), Ids{});
}

TEST(FiltersTest, NotEqualMatchesAbsentFields) {
  EXPECT_EQ(Matching("name!=bar"), (Ids{"foo1", "foo2", "img", "other", "topic"}));
  // An absent label compares as "": every object but foo1 (whose label foo is "true").
  EXPECT_EQ(Matching("labels.foo!=true"), (Ids{"bar1", "foo2", "bar2", "img", "other", "topic"}));
  // ...so != "" only matches objects that have a non-empty value.
  EXPECT_EQ(Matching(R"(labels.foo!="")"), (Ids{"foo1", "foo2", "other"}));
}

TEST(FiltersTest, CommaIsAnd) {
  EXPECT_EQ(Matching("name==bar,labels.bar"), Ids{"bar2"});
  EXPECT_EQ(Matching("labels.foo,name"), (Ids{"foo1", "foo2"}));
  EXPECT_EQ(Matching("name==bar,labels.bar==wrong"), Ids{});
  Result<Filter> filter = Parse("name==bar,labels.bar");
  ASSERT_TRUE(filter.has_value());
  ASSERT_EQ(filter->AnyOf().size(), 1u);
  EXPECT_EQ(filter->AnyOf()[0].size(), 2u);
}

TEST(FiltersTest, SeveralStringsAreOr) {
  Result<Filter> filter = ParseAll({"name==foo,labels.foo==true", "labels.bar", "id==img"});
  ASSERT_TRUE(filter.has_value());
  EXPECT_FALSE(filter->MatchesAll());
  ASSERT_EQ(filter->AnyOf().size(), 3u);
  EXPECT_EQ(Matching(*filter), (Ids{"foo1", "bar2", "img"}));
}

TEST(FiltersTest, ParseAllFailsOnTheFirstBadString) {
  Result<Filter> filter = ParseAll({"name==foo", "name==", "labels."});
  ASSERT_FALSE(filter.has_value());
  EXPECT_TRUE(filter.error().Is(Errc::kInvalidArgument));
  EXPECT_EQ(filter.error().ToString(),
            "filters: parse error: [name==]: expected value or quoted: invalid argument");
}

TEST(FiltersTest, RegexpIsUnanchored) {
  EXPECT_EQ(Matching("name~=oo"), (Ids{"foo1", "foo2"}));
  EXPECT_EQ(Matching("name~=^ba"), (Ids{"bar1", "bar2"}));
  EXPECT_EQ(Matching("other~=[abc]+,name!=foo"), Ids{"other"});
  EXPECT_EQ(Matching("name~=library/a:[0-9]$"), Ids{"img"});
  EXPECT_EQ(OnlySelector("name~=oo").op, Operator::kMatches);
  EXPECT_NE(OnlySelector("name~=oo").regexp, nullptr);
}

TEST(FiltersTest, RegexpOnAbsentFieldSeesEmptyString) {
  EXPECT_EQ(Matching("labels.foo~=^$"), (Ids{"bar1", "bar2", "img", "topic"}));
  EXPECT_EQ(Matching("name~=^$"), Ids{"other"});
}

TEST(FiltersTest, RegexpInSlashes) {
  // The comma inside {1,2} would end an unquoted value.
  EXPECT_EQ(Matching("other~=/[abc]{1,2}/,name!=foo"), Ids{"other"});
  EXPECT_EQ(Matching(R"(topic~=/^\/tasks\//)"), Ids{"topic"});
  EXPECT_EQ(OnlySelector(R"(topic~=/^\/tasks\//)").value, "^/tasks/");
  // Valid (a `"` needs no escape between slashes), matching values that contain `"/`.
  EXPECT_EQ(Matching(R"(other~=/[abc]{0,1}"\//,name!=foo)"), Ids{});
}

TEST(FiltersTest, RegexpInPipes) {
  EXPECT_EQ(Matching("name~=|^docker.io/|"), Ids{"img"});
  EXPECT_EQ(Matching(R"(name~=|^foo$\|^bar$|)"), (Ids{"foo1", "bar1", "foo2", "bar2"}));
  EXPECT_EQ(OnlySelector(R"(name~=|^foo$\|^bar$|)").value, "^foo$|^bar$");
}

TEST(FiltersTest, RegexpInDoubleQuotes) {
  EXPECT_EQ(Matching(R"(other~="complex, yo$")"), Ids{"other"});
  EXPECT_EQ(Matching(R"(name~="a\nb")"), Ids{"topic"});
}

TEST(FiltersTest, BadRegexpParsesButMatchesNothing) {
  // containerd compiles at match time, logs, and reports no match.
  Result<Filter> filter = Parse("name~=(");
  ASSERT_TRUE(filter.has_value());
  EXPECT_EQ(filter->AnyOf()[0][0].regexp, nullptr);
  EXPECT_EQ(Matching(*filter), Ids{});
  EXPECT_EQ(Matching("labels.foo~=[^"), Ids{});
  EXPECT_EQ(Matching(R"(name~=a\C)"), Ids{});  // Go's regexp has no \C
}

// ---- quoting

TEST(FiltersTest, QuotedFieldNames) {
  EXPECT_EQ(Matching(R"(labels."my key"=="v v")"), Ids{"img"});
  EXPECT_EQ(Matching(R"(name==foo,labels."more complex label")"), Ids{"foo2"});
  EXPECT_EQ(Matching(R"("name"==bar)"), (Ids{"bar1", "bar2"}));
  EXPECT_EQ(OnlySelector(R"(labels."my key"==x)").fieldpath,
            (std::vector<std::string>{"labels", "my key"}));
}

TEST(FiltersTest, QuotedFieldNameWithEscapes) {
  EXPECT_EQ(Matching(R"(labels."quote\"back\\"==q)"), Ids{"other"});
  EXPECT_EQ(OnlySelector(R"(labels."a\tb")").fieldpath[1], "a\tb");
}

TEST(FiltersTest, DottedLabelKeysJoinTheRestOfThePath) {
  EXPECT_EQ(OnlySelector("labels.a.b==c").fieldpath,
            (std::vector<std::string>{"labels", "a", "b"}));
  EXPECT_EQ(Matching("labels.a.b==c"), Ids{"img"});
  EXPECT_EQ(Matching(R"(labels."a.b"==c)"), Ids{"img"});
  EXPECT_EQ(Matching(R"(labels."a"."b"==c)"), Ids{"img"});
}

TEST(FiltersTest, QuotedValuesTakeGoEscapes) {
  EXPECT_EQ(OnlySelector(R"(x=="a\nb")").value, "a\nb");
  EXPECT_EQ(OnlySelector(R"(x=="\a\b\f\r\t\v\\\"")").value, "\a\b\f\r\t\v\\\"");
  EXPECT_EQ(OnlySelector(R"(x=="\x41\101\u00e9\U0001F600")").value, "AA\u00e9\U0001F600");
  EXPECT_EQ(OnlySelector(R"(x=="\xff")").value, "\xff");      // \x is one byte, maybe not UTF-8
  EXPECT_EQ(OnlySelector(R"(x=="\ud800")").value, "\uFFFD");  // surrogates become U+FFFD
  EXPECT_EQ(OnlySelector(R"(x=="")").value, "");
  EXPECT_EQ(Matching(R"(name=="a\nb")"), Ids{"topic"});
}

TEST(FiltersTest, QuotedValueKeepsCommasAndSpaces) {
  EXPECT_EQ(Matching(R"(other=="too complex, yo")"), Ids{"other"});
}

TEST(FiltersTest, AltQuotesOnlyAfterMatchOperator) {
  EXPECT_EQ(ParseError("name==/x/"),
            "filters: parse error: [name== >|/|< x/]: invalid quote encountered");
  EXPECT_EQ(ParseError("name!=|x|"),
            "filters: parse error: [name!= >|||< x|]: invalid quote encountered");
  EXPECT_EQ(ParseError("topic==/tasks/exit"),
            "filters: parse error: [topic== >|/|< tasks/exit]: invalid quote encountered");
  EXPECT_EQ(ParseError("labels.|foo|==x"),
            "filters: parse error: [labels. >|||< foo|==x]: invalid quote encountered");
  EXPECT_EQ(Matching(R"(topic=="/tasks/exit")"), Ids{"topic"});
}

TEST(FiltersTest, DelimiterEscapesDependOnTheQuote) {
  EXPECT_EQ(ParseError(R"(name~="\/")"),
            R"(filters: parse error: [name~= >|"|< \/"]: illegal escape sequence)");
  EXPECT_EQ(ParseError(R"(name~=|a\/b|)"),
            R"(filters: parse error: [name~= >|||< a\/b|]: illegal escape sequence)");
  EXPECT_EQ(ParseError(R"(name~=/\"/)"),
            R"(filters: parse error: [name~= >|/|< \"/]: illegal escape sequence)");
}

// ---- unquoted values

TEST(FiltersTest, UnquotedValuesKeepPunctuation) {
  EXPECT_EQ(Matching("name==docker.io/library/a:1"), Ids{"img"});
  EXPECT_EQ(Matching("labels.foo==omg_asdf.asdf-qwer"), Ids{"other"});
  EXPECT_EQ(OnlySelector("x==a=b").value, "a=b");
  EXPECT_EQ(OnlySelector("x==a\"b\"").value, "a\"b\"");
  EXPECT_EQ(Matching("labels.cow==牛"), Ids{"topic"});
  EXPECT_EQ(Matching("labels.cow~=|牛|"), Ids{"topic"});
}

TEST(FiltersTest, ValueStartingWithDotNeedsQuotes) {
  EXPECT_EQ(ParseError("name==.x"),
            "filters: parse error: [name== >|.|< x]: expected value or quoted");
  EXPECT_EQ(OnlySelector(R"(name==".x")").value, ".x");
}

TEST(FiltersTest, FieldsMayStartWithDigitOrUnderscore) {
  EXPECT_EQ(OnlySelector("_a.0b==1").fieldpath, (std::vector<std::string>{"_a", "0b"}));
}

// ---- whitespace

TEST(FiltersTest, WhitespaceBeforeTokensIsSkipped) {
  EXPECT_EQ(Matching("  name == bar"), (Ids{"bar1", "bar2"}));
  EXPECT_EQ(Matching("name==bar,\tlabels. bar"), Ids{"bar2"});
  EXPECT_EQ(Matching("name ~= \"^f\""), (Ids{"foo1", "foo2"}));
}

TEST(FiltersTest, WhitespaceWhereContainerdPeeksIsAnError) {
  EXPECT_EQ(ParseError("name==foo "),
            "filters: parse error: [name==foo >| |< ]: unexpected input:  ");
  EXPECT_EQ(ParseError("name==a b"),
            "filters: parse error: [name==a >| |< b]: unexpected input:  ");
  EXPECT_EQ(ParseError("name ,x"),
            R"(filters: parse error: [name  >|,|< x]: expected an operator ("=="|"!="|"~="))");
  EXPECT_EQ(ParseError("labels .foo"),
            R"(filters: parse error: [labels  >|.|< foo]: expected an operator ("=="|"!="|"~="))");
  EXPECT_EQ(ParseError(" "), "filters: parse error: [ ]: expected field or quoted");
}

// ---- malformed input

TEST(FiltersTest, MissingPieces) {
  EXPECT_EQ(ParseError("name==foo,"),
            "filters: parse error: [name==foo,]: expected field or quoted");
  EXPECT_EQ(ParseError("labels."), "filters: parse error: [labels.]: expected field or quoted");
  EXPECT_EQ(ParseError(","), "filters: parse error: [ >|,|< ]: expected field or quoted");
  EXPECT_EQ(ParseError("name==a,,b"),
            "filters: parse error: [name==a, >|,|< b]: expected field or quoted");
  EXPECT_EQ(ParseError("name=="), "filters: parse error: [name==]: expected value or quoted");
  EXPECT_EQ(ParseError("image~=,id?=?fbaq"),
            "filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted");
}

TEST(FiltersTest, BadFieldCharacters) {
  EXPECT_EQ(ParseError("labels.-x"),
            "filters: parse error: [labels. >|-|< x]: expected field or quoted");
  EXPECT_EQ(ParseError(R"(labels.?"x".post==present)"),
            R"(filters: parse error: [labels. >|?|< "x".post==present]: expected field or quoted)");
}

TEST(FiltersTest, BadOperators) {
  EXPECT_EQ(ParseError("name=foo"),
            R"(filters: parse error: [name >|=|< foo]: unsupported operator "=")");
  EXPECT_EQ(ParseError("name===foo"),
            R"(filters: parse error: [name >|=|< ==foo]: unsupported operator "===")");
  EXPECT_EQ(ParseError("name==!x"),
            R"(filters: parse error: [name >|=|< =!x]: unsupported operator "==!")");
  EXPECT_EQ(ParseError("name foo"),
            R"(filters: parse error: [name  >|f|< oo]: expected an operator ("=="|"!="|"~="))");
}

TEST(FiltersTest, UnterminatedQuotes) {
  EXPECT_EQ(ParseError(R"(labels."abc)"),
            R"(filters: parse error: [labels. >|"|< abc]: quoted literal not terminated)");
  // An unquoted "/" starts a quote: label keys with "/" must be quoted.
  EXPECT_EQ(ParseError("labels.ns/key==value"),
            "filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated");
  EXPECT_EQ(ParseError("name~=/abc"),
            "filters: parse error: [name~= >|/|< abc]: quoted literal not terminated");
  EXPECT_EQ(ParseError("name==\"a\nb\""),
            "filters: parse error: [name== >|\"|< a\nb\"]: quoted literal not terminated");
}

TEST(FiltersTest, BadEscapes) {
  EXPECT_EQ(ParseError(R"(labels."\g")"),
            R"(filters: parse error: [labels. >|"|< \g"]: illegal escape sequence)");
  EXPECT_EQ(ParseError(R"(labels."\xaz")"),
            R"(filters: parse error: [labels. >|"|< \xaz"]: illegal numeric escape sequence)");
  EXPECT_EQ(ParseError(R"(name=="\777")"),
            R"(filters: parse error: [name== >|"|< \777"]: unquoting failed: quote syntax error)");
  EXPECT_EQ(
      ParseError(R"(name=="\U00110000")"),
      R"(filters: parse error: [name== >|"|< \U00110000"]: unquoting failed: quote syntax error)");
}

TEST(FiltersTest, UnexpectedInputAfterAValue) {
  EXPECT_EQ(ParseError(R"(name=="a"b)"),
            R"(filters: parse error: [name=="a" >|b|< ]: unexpected input: b)");
  EXPECT_EQ(ParseError("name==foo\n"),
            "filters: parse error: [name==foo >|\n|< ]: unexpected input: \n");
}

TEST(FiltersTest, NulAndInvalidUtf8) {
  using std::string_literals::operator""s;
  EXPECT_EQ(ParseError("name\0"s), "filters: parse error: [name >|\0|< ]: unexpected null"s);
  EXPECT_EQ(ParseError("name==\xff"), "filters: parse error: [name== >|\xff|< ]: rune error");
}

TEST(FiltersTest, ErrorsAreInvalidArgument) {
  Result<Filter> filter = Parse("name==");
  ASSERT_FALSE(filter.has_value());
  EXPECT_EQ(filter.error().Code(), Errc::kInvalidArgument);
  EXPECT_EQ(filter.error().ToString(),
            "filters: parse error: [name==]: expected value or quoted: invalid argument");
}

// ---- MakeAdaptor

TEST(FiltersTest, MakeAdaptorFieldPaths) {
  Map annotations = {{"org.opencontainers.image.ref.name", "1"}};
  Adaptor adaptor = MakeAdaptor({{"name", "n"}, {"target.digest", "sha256:x"}, {"empty", ""}},
                                {{"labels", nullptr}, {"annotations", &annotations}});
  using Path = std::vector<std::string>;
  EXPECT_EQ(adaptor(Path{"name"}), "n");
  EXPECT_EQ(adaptor(Path{"target", "digest"}), "sha256:x");
  EXPECT_EQ(adaptor(Path{"target.digest"}), std::nullopt);  // quoted "target.digest" element
  EXPECT_EQ(adaptor(Path{"target"}), std::nullopt);
  EXPECT_EQ(adaptor(Path{"empty"}), std::nullopt);
  EXPECT_EQ(adaptor(Path{}), std::nullopt);
  EXPECT_EQ(adaptor(Path{"labels", "a"}), std::nullopt);  // null map
  EXPECT_EQ(adaptor(Path{"annotations", "org", "opencontainers", "image", "ref", "name"}), "1");

  Result<Filter> filter =
      Parse("target.digest~=^sha256:,annotations.org.opencontainers.image.ref.name");
  ASSERT_TRUE(filter.has_value());
  EXPECT_TRUE(filter->Match(adaptor));
}

TEST(FiltersTest, MakeAdaptorEmptyFieldPresence) {
  Map labels = {{"k", ""}};
  Adaptor absent = MakeAdaptor({{"parent", ""}}, {{"labels", &labels}});
  Adaptor present = MakeAdaptor({{"parent", ""}}, {{"labels", &labels}}, EmptyField::kPresent);
  Result<Filter> filter = Parse("parent");
  ASSERT_TRUE(filter.has_value());
  EXPECT_FALSE(filter->Match(absent));
  EXPECT_TRUE(filter->Match(present));
  // Map entries with empty values are present either way (containerd's checkMap).
  Result<Filter> label = Parse("labels.k");
  ASSERT_TRUE(label.has_value());
  EXPECT_TRUE(label->Match(absent));
}

}  // namespace
}  // namespace berth::filters
