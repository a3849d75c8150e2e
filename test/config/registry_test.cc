// Tests of gw::FilterRegistry (core/registry.h): lookup, sorted names, and a
// duplicate registration — made at static initialization through
// GW_REGISTER_FILTER, as two plugins clashing on one name would — being
// recorded and refused by the loader.
#include "core/sdk/registry.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "config/loader.h"

namespace gw {
namespace {

class NullFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override { return std::make_unique<Filter>(); }
};

// A terminal bytes filter named `Name` whose traits mark which class it is
// (observes_writes), so the test can tell the first registration from the
// second.
template <bool kSecond>
class NamedFactory : public FilterConfigFactory {
 public:
  explicit NamedFactory(const char* name) : name_(name) {}
  std::string_view name() const override { return name_; }
  FilterTraits traits() const override {
    FilterTraits t;
    t.terminal = true;
    t.observes_writes = kSecond;
    return t;
  }
  std::string_view schema() const override { return R"({"type": "object"})"; }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value&, ParseContext&) const override {
    return std::make_shared<FilterConfig>();
  }
  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig>,
                                               WorkerContext&) const override {
    return std::make_unique<NullFactory>();
  }

 private:
  const char* name_;
};

class DupFirst : public NamedFactory<false> {
 public:
  DupFirst() : NamedFactory("dup_filter") {}
};
class DupSecond : public NamedFactory<true> {
 public:
  DupSecond() : NamedFactory("dup_filter") {}
};
class Alpha : public NamedFactory<false> {
 public:
  Alpha() : NamedFactory("alpha") {}
};

GW_REGISTER_FILTER(DupFirst);
GW_REGISTER_FILTER(DupSecond);
GW_REGISTER_FILTER(Alpha);

constexpr char kDupError[] =
    "filter name 'dup_filter' is registered twice: rename one of the filters (names must be "
    "unique)";

TEST(FilterRegistryTest, FindsRegisteredFiltersByName) {
  const FilterConfigFactory* f = FilterRegistry::get().find("alpha");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->name(), "alpha");
  EXPECT_EQ(FilterRegistry::get().find("beta"), nullptr);
  EXPECT_EQ(FilterRegistry::get().find(""), nullptr);
}

TEST(FilterRegistryTest, NamesAreSortedAndUnique) {
  EXPECT_EQ(FilterRegistry::get().names(), (std::vector<std::string>{"alpha", "dup_filter"}));
}

TEST(FilterRegistryTest, DuplicateAtStaticInitIsRecordedAndTheFirstKept) {
  EXPECT_EQ(FilterRegistry::get().errors(), (std::vector<std::string>{kDupError}));
  const FilterConfigFactory* f = FilterRegistry::get().find("dup_filter");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->traits().observes_writes);  // DupFirst, not DupSecond
}

TEST(FilterRegistryTest, DuplicateAddedLaterIsRecordedToo) {
  FilterRegistry::get().add(std::make_unique<Alpha>());
  EXPECT_EQ(FilterRegistry::get().errors(),
            (std::vector<std::string>{kDupError,
                                      "filter name 'alpha' is registered twice: rename one of "
                                      "the filters (names must be unique)"}));
  EXPECT_EQ(FilterRegistry::get().names().size(), 2u);
}

TEST(FilterRegistryTest, LoaderRefusesToLoadWhileRegistrationErrorsExist) {
  auto r = config::loadString(
      R"({"listeners": [{"name": "l", "address": "127.0.0.1:1",
          "filters": [{"name": "alpha"}]}]})",
      "test.json");
  EXPECT_EQ(r.config, nullptr);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0], std::string("test.json: ") + kDupError);
}

// Staging (what the plugin loader does around a dlopen): staged types are
// invisible until committed, a discarded one never appears, and a staged
// duplicate is reported in staged(), not in errors().
TEST(FilterRegistryTest, StagedRegistrationsAreInvisibleUntilCommitted) {
  class Staged : public NamedFactory<false> {
   public:
    explicit Staged(const char* name) : NamedFactory(name) {}
  };
  FilterRegistry& r = FilterRegistry::get();
  size_t errors = r.errors().size();
  r.beginStaging();
  r.add(std::make_unique<Staged>("staged_refused"));
  r.add(std::make_unique<Staged>("alpha"));
  EXPECT_EQ(r.staged().names, (std::vector<std::string>{"staged_refused", "alpha"}));
  EXPECT_EQ(r.staged().duplicates, (std::vector<std::string>{"alpha"}));
  EXPECT_EQ(r.find("staged_refused"), nullptr);
  r.discardStaging();
  EXPECT_EQ(r.find("staged_refused"), nullptr);
  EXPECT_EQ(r.errors().size(), errors);

  r.beginStaging();
  r.add(std::make_unique<Staged>("staged_kept"));
  EXPECT_EQ(r.find("staged_kept"), nullptr);
  r.commitStaging();
  EXPECT_NE(r.find("staged_kept"), nullptr);
  EXPECT_TRUE(r.staged().names.empty());
  // Staging is over: a duplicate is a registration error again.
  r.add(std::make_unique<Staged>("staged_kept"));
  EXPECT_EQ(r.errors().size(), errors + 1);
}

}  // namespace
}  // namespace gw
