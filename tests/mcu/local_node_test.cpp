// Tests LocalNode (mcu/local_node.cpp) on a real WorkerPool with a video worker: audio-only
// conferences never post to the video worker (5,000 create+destroy cycles while it cannot run),
// the first participant with video makes the conference's video half with the layout set before
// it and a tile for those already in, and a video worker whose task ring is full is a 503 with a
// message, not a hang; a burst of creates ahead of a media worker that cannot run waits for room in
// its task ring rather than failing.
#include "mcu/local_node.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/support/daemon.h"
#include "tests/support/wait_until.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;

// Far more cycles than the video worker's ring holds: before the video half was made lazily,
// every create and every destroy posted a task there, and this ring (room for at least 64 tasks,
// 127 as SpscRing rounds up) filled within a hundred cycles.
constexpr uint64_t kCycles = 5000;
constexpr size_t kVideoRingCapacity = 64;
// More tasks than the ring can hold, whatever it rounds its capacity up to.
constexpr size_t kMoreThanTheRing = 4 * kVideoRingCapacity;
// Every this many cycles, the conference also gets an audio-only participant, a layout change,
// a state read, a deaf patch and a leave: none of which concerns a video worker either.
constexpr uint64_t kBusyEvery = 100;

allocator::MediaRequest opus() {
  allocator::MediaRequest audio;
  audio.codec = allocator::Codec::kOpus;
  audio.payload_type = 111;
  return audio;
}

allocator::MediaRequest h264() {
  allocator::MediaRequest video;
  video.codec = allocator::Codec::kH264;
  video.payload_type = 96;
  return video;
}

allocator::ParticipantRequest audio_only() {
  allocator::ParticipantRequest request;
  request.audio = opus();
  return request;
}

allocator::ParticipantRequest with_video() {
  allocator::ParticipantRequest request;
  request.audio = opus();
  request.video = h264();
  return request;
}

allocator::ConferencePatch layout_patch(allocator::Layout layout) {
  allocator::ConferencePatch patch;
  patch.layout = layout;
  return patch;
}

// What a conference's video half looks like on its video worker, read there.
struct VideoHalf {
  allocator::Layout layout = allocator::Layout::k2x2;
  size_t participants = 0;
};

// Posts a task that keeps `worker` from running anything else until `gate` is ready, as a thread
// without a CPU is kept. True once that task runs: it has left the ring, so what the test posts
// next is all the ring holds.
bool block_worker(Worker& worker, std::shared_future<void> gate) {
  auto entered = std::make_shared<std::promise<void>>();
  std::future<void> running = entered->get_future();
  const bool posted = worker.post_fn([entered, gate = std::move(gate)](Worker&) {
    entered->set_value();
    gate.wait();
  });
  return posted && running.wait_for(kDeadline) == std::future_status::ready;
}

class LocalNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WorkerPoolOptions options;
    options.workers = 1;
    options.pin = false;
    options.video_workers = 1;
    options.video_worker.task_ring_capacity = kVideoRingCapacity;
    pool_ = std::make_unique<WorkerPool>(options);
    std::string error;
    ASSERT_TRUE(pool_->start(5s, &error)) << error;
    const std::string ports = test_support::free_media_ports(20);
    ASSERT_FALSE(ports.empty());
    LocalNodeOptions node_options;
    ASSERT_TRUE(MediaPortPool::parse_range(ports, &node_options.port_lo, &node_options.port_hi, &error)) << error;
    node_ = std::make_unique<LocalNode>(*pool_, node_options);
  }

  // A failed assertion must not leave the video worker blocked: the pool could not stop it.
  void TearDown() override { unblock_video_worker(); }

  Worker& video_worker() { return pool_->video_worker(0); }

  // Keeps the video worker from running anything else until unblock_video_worker(), as a
  // SCHED_IDLE thread on a busy core is kept.
  void block_video_worker() {
    gate_.emplace();
    ASSERT_TRUE(block_worker(video_worker(), gate_->get_future().share()));
  }
  void unblock_video_worker() {
    if (gate_) gate_->set_value();
    gate_.reset();
  }

  // The conference's video half as its video worker sees it; nullopt when it has none.
  std::optional<VideoHalf> video_half(uint64_t conference) {
    std::string error;
    const auto half = video_worker().call(
        [conference](Worker& w) -> std::optional<VideoHalf> {
          const auto it = w.video_conferences().find(conference);
          if (it == w.video_conferences().end()) return std::nullopt;
          return VideoHalf{it->second->layout(), it->second->participant_count()};
        },
        kDeadline, &error);
    EXPECT_TRUE(half) << error;
    return half ? *half : std::nullopt;
  }

  size_t audio_conferences() {
    std::string error;
    const auto count = pool_->worker(0).call([](Worker& w) { return w.conferences().size(); }, kDeadline, &error);
    EXPECT_TRUE(count) << error;
    return count.value_or(SIZE_MAX);
  }

  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<LocalNode> node_;
  std::optional<std::promise<void>> gate_;
};

TEST_F(LocalNodeTest, AudioOnlyConferencesNeverPostToTheVideoWorker) {
  block_video_worker();
  const uint64_t posted_before = video_worker().tasks_posted();
  const allocator::ConferenceSettings settings;
  for (uint64_t id = 1; id <= kCycles; ++id) {
    SCOPED_TRACE("conference " + std::to_string(id));
    const auto opened = node_->open_conference(id, settings);
    ASSERT_TRUE(opened) << opened.error().message;
    if (id % kBusyEvery == 0) {
      const auto joined = node_->add_participant(id, 1, audio_only());
      ASSERT_TRUE(joined) << joined.error().message;
      EXPECT_TRUE(joined->audio);
      EXPECT_FALSE(joined->video);
      const auto patched = node_->update_conference(id, layout_patch(allocator::Layout::k1x1));
      ASSERT_TRUE(patched) << patched.error().message;
      const auto state = node_->media_state(id);
      ASSERT_TRUE(state) << state.error().message;
      ASSERT_EQ(state->participants.size(), 1u);
      EXPECT_FALSE(state->participants[0].video);
      allocator::ParticipantPatch deaf;
      deaf.deaf = true;
      const auto updated = node_->update_participant(id, 1, deaf);
      ASSERT_TRUE(updated) << updated.error().message;
      const auto removed = node_->remove_participant(id, 1);
      ASSERT_TRUE(removed) << removed.error().message;
    }
    node_->close_conference(id);
  }
  EXPECT_EQ(video_worker().tasks_posted(), posted_before);
  EXPECT_EQ(node_->load().conferences, 0u);
  EXPECT_EQ(node_->load().participants, 0u);
  EXPECT_EQ(audio_conferences(), 0u);

  // Once a participant with video joins, its conference has a video half: made on the video
  // worker (now free to run), with the layout set before any video and a plain tile for the
  // audio-only participant who came first.
  unblock_video_worker();
  constexpr uint64_t kVideoConference = kCycles + 1;
  ASSERT_TRUE(node_->open_conference(kVideoConference, settings));
  ASSERT_TRUE(node_->add_participant(kVideoConference, 1, audio_only()));
  ASSERT_TRUE(node_->update_conference(kVideoConference, layout_patch(allocator::Layout::k3x3)));
  EXPECT_EQ(video_worker().tasks_posted(), posted_before);
  EXPECT_FALSE(video_half(kVideoConference));  // the read itself is a task: count it from here
  const auto joined = node_->add_participant(kVideoConference, 2, with_video());
  ASSERT_TRUE(joined) << joined.error().message;
  ASSERT_TRUE(joined->video);
  EXPECT_EQ(joined->video->codec, allocator::Codec::kH264);
  EXPECT_NE(joined->video->local.port(), 0);

  const auto state = node_->media_state(kVideoConference);
  ASSERT_TRUE(state) << state.error().message;
  ASSERT_EQ(state->participants.size(), 2u);
  EXPECT_FALSE(state->participants[0].video);
  ASSERT_TRUE(state->participants[1].video);
  EXPECT_EQ(state->participants[1].video->local, joined->video->local);

  const auto half = video_half(kVideoConference);
  ASSERT_TRUE(half);
  EXPECT_EQ(half->layout, allocator::Layout::k3x3);
  EXPECT_EQ(half->participants, 2u);
  // A layout change now reaches it, behind the read that follows.
  ASSERT_TRUE(node_->update_conference(kVideoConference, layout_patch(allocator::Layout::kSpeakerThumbnails)));
  const auto changed = video_half(kVideoConference);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->layout, allocator::Layout::kSpeakerThumbnails);

  // Closing tears the video half down as well.
  node_->close_conference(kVideoConference);
  EXPECT_FALSE(video_half(kVideoConference));
  EXPECT_EQ(audio_conferences(), 0u);
}

TEST_F(LocalNodeTest, FullVideoTaskRingIsA503WithAMessage) {
  const allocator::ConferenceSettings settings;
  ASSERT_TRUE(node_->open_conference(1, settings));
  const auto first = node_->add_participant(1, 1, with_video());
  ASSERT_TRUE(first) << first.error().message;

  block_video_worker();
  size_t filler = 0;
  while (filler < kMoreThanTheRing && video_worker().post_fn([](Worker&) {})) ++filler;
  ASSERT_LT(filler, kMoreThanTheRing);  // refused: the ring is full

  const auto expect_ring_full = [](const auto& result, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().status, 503);
    EXPECT_EQ(result.error().code, "WORKER_UNAVAILABLE");
    EXPECT_NE(result.error().message.find("video worker 0: task ring full"), std::string::npos)
        << result.error().message;
  };
  expect_ring_full(node_->update_conference(1, layout_patch(allocator::Layout::k1x1)), "layout");
  expect_ring_full(node_->add_participant(1, 2, with_video()), "video join");
  expect_ring_full(node_->add_participant(1, 3, audio_only()), "audio-only join (its tile)");
  // A conference without video is not held up by its neighbour's video worker.
  ASSERT_TRUE(node_->open_conference(2, settings));
  const auto audio_join = node_->add_participant(2, 1, audio_only());
  EXPECT_TRUE(audio_join) << audio_join.error().message;
  node_->close_conference(2);

  // The refused joins left nothing behind: the node counts one participant, and once the
  // worker runs again the half has only the first.
  EXPECT_EQ(node_->load().participants, 1u);
  unblock_video_worker();
  // Until the worker has worked through the fillers, a call may still find the ring full.
  ASSERT_TRUE(test_support::wait_until(
      [&] { return video_worker().call([](Worker&) { return true; }, kDeadline, nullptr).has_value(); }, kDeadline));
  const auto half = video_half(1);
  ASSERT_TRUE(half);
  EXPECT_EQ(half->participants, 1u);
  node_->close_conference(1);
  EXPECT_FALSE(video_half(1));
}

// A burst of creates ahead of a media worker that cannot run (no CPU for a moment): the creates
// beyond what its task ring holds wait for room instead of failing with 503, and all succeed once
// it runs again.
TEST(LocalNodeBackpressureTest, CreatesWaitForRoomInAFullMediaWorkerRing) {
  WorkerPoolOptions options;
  options.workers = 1;
  options.pin = false;
  options.video = false;
  options.worker.task_ring_capacity = 8;
  WorkerPool pool(options);
  std::string error;
  ASSERT_TRUE(pool.start(5s, &error)) << error;
  LocalNodeOptions node_options;
  node_options.call_timeout = 60s;  // how long a create may wait for room: longer than this test
  ASSERT_TRUE(MediaPortPool::parse_range(test_support::free_media_ports(4), &node_options.port_lo,
                                         &node_options.port_hi, &error))
      << error;
  LocalNode node(pool, node_options);
  Worker& worker = pool.worker(0);

  std::promise<void> gate;
  ASSERT_TRUE(block_worker(worker, gate.get_future().share()));

  const size_t room = worker.task_ring_capacity();
  const uint64_t creates = 4 * room;
  const uint64_t before = worker.tasks_posted();  // the blocking task and whatever start() posted
  std::atomic<uint64_t> succeeded{0};
  std::thread creator([&] {
    for (uint64_t id = 1; id <= creates; ++id) {
      if (node.open_conference(id, allocator::ConferenceSettings{})) ++succeeded;
    }
  });
  // The ring holds `room` creates behind the blocked task: then it is full and the creator waits.
  EXPECT_TRUE(test_support::wait_until(
      [&] { return worker.tasks_posted() == before + room && succeeded.load() == room; }, kDeadline));
  gate.set_value();
  creator.join();
  EXPECT_EQ(succeeded.load(), creates);
  EXPECT_EQ(worker.tasks_posted(), before + creates);
  for (uint64_t id = 1; id <= creates; ++id) node.close_conference(id);
}

}  // namespace
}  // namespace confab::mcu
