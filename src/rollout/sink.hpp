// rollout/sink.hpp: how finished requests of routes under a rollout reach the controller.
// Workers push into their own bounded queue (one uncontended mutex each); the controller
// drains every queue on its tick. Nothing here blocks a worker; a full queue drops and counts.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <functional>
#include <vector>

#include "rollout/evidence.hpp"

namespace sluice::rollout {

// Feedback names a request by its id; samples carry the id's hash (no allocation per request).
inline uint64_t request_key(std::string_view request_id) { return std::hash<std::string_view>{}(request_id); }

struct Sample {
  std::string rollout_id;
  uint64_t request_key = 0;  // 0: not a request users can give feedback on
  bool candidate = false;
  Observation obs;
};

// A mirrored request: what the user got from stable and what the candidate answered.
struct ShadowPair {
  std::string rollout_id, request_id;
  Observation stable, candidate;
  std::string stable_text, candidate_text;
};

struct FeedbackItem {
  std::string request_id;
  double score = 0;
};

class Sink {
 public:
  Sink(size_t workers, size_t capacity_per_worker);
  void push(size_t worker, Sample&& s);
  void push(size_t worker, ShadowPair&& p);
  void push(size_t worker, FeedbackItem&& f);
  struct Batch {
    std::vector<Sample> samples;
    std::vector<ShadowPair> pairs;
    std::vector<FeedbackItem> feedback;
  };
  void drain(Batch& out);
  std::atomic<uint64_t> dropped{0};

 private:
  struct Queue {
    std::mutex mu;
    Batch b;
  };
  std::vector<std::unique_ptr<Queue>> queues_;
  size_t capacity_;
};

}  // namespace sluice::rollout
