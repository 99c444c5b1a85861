// Tests for images (with their references) and snapshots in the store.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "store_test_base.h"

namespace berth::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ImageStoreTest : public StoreTestBase {};

const std::string kTag = "docker.io/library/busybox:1.36";
const std::string kDigestRef = "docker.io/library/busybox@sha256:" + std::string(64, 'm');

TEST_F(ImageStoreTest, ImageRoundTripSurvivesReopen) {
  ImageRecord image = fullImage('a');
  ASSERT_TRUE(store_->putImage(image, {kTag, kDigestRef}).ok());
  EXPECT_EQ(**store_->getImage(image.id), image);

  reopen();
  absl::StatusOr<ImagePtr> loaded = store_->getImage(image.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(**loaded, image);
  EXPECT_EQ(**store_->getImageByRef(kTag), image);
  EXPECT_EQ(**store_->getImageByRef(kDigestRef), image);
  EXPECT_THAT(store_->imageRefs(image.id), ElementsAre(kTag, kDigestRef));
  EXPECT_EQ(store_->listImages().size(), 1u);
}

TEST_F(ImageStoreTest, PutReplacesTheRecordAndMovesRefs) {
  ImageRecord old_image = fullImage('a');
  ImageRecord new_image = fullImage('b');
  ASSERT_TRUE(store_->putImage(old_image, {kTag, "old:keep"}).ok());
  ASSERT_TRUE(store_->putImage(new_image, {kTag}).ok());  // the tag moved to a newer image

  EXPECT_EQ((*store_->getImageByRef(kTag))->id, new_image.id);
  EXPECT_THAT(store_->imageRefs(old_image.id), ElementsAre("old:keep"));
  EXPECT_THAT(store_->imageRefs(new_image.id), ElementsAre(kTag));

  new_image.pinned = false;
  ASSERT_TRUE(store_->putImage(new_image, {}).ok());  // same id: replaced, refs kept
  reopen();
  EXPECT_FALSE((*store_->getImage(new_image.id))->pinned);
  EXPECT_THAT(store_->imageRefs(new_image.id), ElementsAre(kTag));
  EXPECT_THAT(store_->imageRefs(old_image.id), ElementsAre("old:keep"));
}

TEST_F(ImageStoreTest, RefsCanBeAddedAndRemoved) {
  ImageRecord image = fullImage('a');
  ASSERT_TRUE(store_->putImage(image, {}).ok());
  EXPECT_TRUE(store_->imageRefs(image.id).empty());

  absl::Status missing = store_->addImageRef(kTag, "sha256:nope");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("sha256:nope"));

  ASSERT_TRUE(store_->addImageRef(kTag, image.id).ok());
  ASSERT_TRUE(store_->addImageRef(kTag, image.id).ok());
  EXPECT_EQ((*store_->getImageByRef(kTag))->id, image.id);
  ASSERT_TRUE(store_->removeImageRef(kTag).ok());
  ASSERT_TRUE(store_->removeImageRef(kTag).ok());
  absl::Status gone = store_->getImageByRef(kTag).status();
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gone.message(), HasSubstr(kTag));

  reopen();
  EXPECT_TRUE(store_->imageRefs(image.id).empty());
  EXPECT_TRUE(store_->getImage(image.id).ok());
}

TEST_F(ImageStoreTest, DeleteImageRemovesItsRefsAtomically) {
  ImageRecord image = fullImage('a');
  ImageRecord other = fullImage('b');
  ASSERT_TRUE(store_->putImage(image, {kTag, kDigestRef}).ok());
  ASSERT_TRUE(store_->putImage(other, {"other:1"}).ok());
  ASSERT_TRUE(store_->deleteImage(image.id).ok());
  ASSERT_TRUE(store_->deleteImage(image.id).ok());  // idempotent

  EXPECT_EQ(store_->getImage(image.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->getImageByRef(kTag).status().code(), absl::StatusCode::kNotFound);
  reopen();
  EXPECT_EQ(store_->listImages().size(), 1u);
  EXPECT_EQ(store_->getImageByRef(kDigestRef).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store_->getImageByRef("other:1"))->id, other.id);
}

TEST_F(ImageStoreTest, InvalidInputIsRefused) {
  EXPECT_EQ(store_->putImage(ImageRecord{}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->putImage(fullImage('a'), {""}).code(), absl::StatusCode::kInvalidArgument);
  ImageRecord bad_utf8 = fullImage('a');
  bad_utf8.config_json = "\xff\xfe";
  EXPECT_EQ(store_->putImage(bad_utf8, {kTag}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->listImages().empty());
  EXPECT_EQ(store_->getImageByRef(kTag).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ImageStoreTest, SnapshotRoundTripSurvivesReopen) {
  SnapshotRecord base = fullSnapshot("sha256:base", "", SnapshotKind::kCommitted);
  SnapshotRecord layer = fullSnapshot("sha256:layer", base.key, SnapshotKind::kCommitted);
  SnapshotRecord rootfs = fullSnapshot("k8s-rootfs-1", layer.key, SnapshotKind::kActive);
  for (const SnapshotRecord& s : {base, layer, rootfs}) {
    ASSERT_TRUE(store_->createSnapshot(s).ok()) << s.key;
  }
  reopen();
  EXPECT_EQ(**store_->getSnapshot(base.key), base);
  EXPECT_EQ(**store_->getSnapshot(layer.key), layer);
  EXPECT_EQ(**store_->getSnapshot(rootfs.key), rootfs);
  std::vector<SnapshotPtr> all = store_->listSnapshots();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->key, rootfs.key);  // by key
}

TEST_F(ImageStoreTest, SnapshotUpdateChangesDataFieldsOnly) {
  SnapshotRecord base = fullSnapshot("base", "", SnapshotKind::kCommitted);
  ASSERT_TRUE(store_->createSnapshot(base).ok());
  absl::StatusOr<SnapshotPtr> sized = store_->updateSnapshot("base", [](SnapshotRecord& r) {
    r.size = 42;
    r.labels["gc"] = "keep";
    return absl::OkStatus();
  });
  ASSERT_TRUE(sized.ok()) << sized.status();
  absl::StatusOr<SnapshotPtr> rekind = store_->updateSnapshot("base", [](SnapshotRecord& r) {
    r.kind = SnapshotKind::kActive;
    return absl::OkStatus();
  });
  EXPECT_EQ(rekind.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->updateSnapshot("nope", [](SnapshotRecord&) { return absl::OkStatus(); })
                .status()
                .code(),
            absl::StatusCode::kNotFound);

  reopen();
  SnapshotPtr loaded = *store_->getSnapshot("base");
  EXPECT_EQ(loaded->size, 42u);
  EXPECT_EQ(loaded->labels.at("gc"), "keep");
  EXPECT_EQ(loaded->kind, SnapshotKind::kCommitted);
}

TEST_F(ImageStoreTest, SnapshotParentRules) {
  SnapshotRecord base = fullSnapshot("base", "", SnapshotKind::kCommitted);
  SnapshotRecord active = fullSnapshot("active", "base", SnapshotKind::kActive);
  ASSERT_TRUE(store_->createSnapshot(base).ok());
  ASSERT_TRUE(store_->createSnapshot(active).ok());

  EXPECT_EQ(store_->createSnapshot(base).code(), absl::StatusCode::kAlreadyExists);
  absl::Status orphan = store_->createSnapshot(fullSnapshot("x", "nope", SnapshotKind::kActive));
  EXPECT_EQ(orphan.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(orphan.message(), HasSubstr("\"nope\""));
  absl::Status on_active =
      store_->createSnapshot(fullSnapshot("y", "active", SnapshotKind::kActive));
  EXPECT_EQ(on_active.code(), absl::StatusCode::kFailedPrecondition);

  absl::Status parent_busy = store_->deleteSnapshot("base");
  EXPECT_EQ(parent_busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(parent_busy.message(), HasSubstr("parent of 1"));
  ASSERT_TRUE(store_->deleteSnapshot("active").ok());
  ASSERT_TRUE(store_->deleteSnapshot("base").ok());
  ASSERT_TRUE(store_->deleteSnapshot("base").ok());
  EXPECT_EQ(store_->getSnapshot("base").status().code(), absl::StatusCode::kNotFound);
  reopen();
  EXPECT_TRUE(store_->listSnapshots().empty());
}

}  // namespace
}  // namespace berth::store::testing
