#include "rollout/sink.hpp"

namespace sluice::rollout {

Sink::Sink(size_t workers, size_t capacity) : capacity_(capacity) {
  for (size_t i = 0; i < workers; ++i) queues_.push_back(std::make_unique<Queue>());
}

namespace {
template <class T>
bool bounded_push(std::vector<T>& v, T&& x, size_t cap) {
  if (v.size() >= cap) return false;
  v.push_back(std::move(x));
  return true;
}
}  // namespace

void Sink::push(size_t w, Sample&& s) {
  Queue& q = *queues_[w % queues_.size()];
  std::lock_guard<std::mutex> lock(q.mu);
  if (!bounded_push(q.b.samples, std::move(s), capacity_)) dropped.fetch_add(1, std::memory_order_relaxed);
}

void Sink::push(size_t w, ShadowPair&& p) {
  Queue& q = *queues_[w % queues_.size()];
  std::lock_guard<std::mutex> lock(q.mu);
  if (!bounded_push(q.b.pairs, std::move(p), capacity_)) dropped.fetch_add(1, std::memory_order_relaxed);
}

void Sink::push(size_t w, FeedbackItem&& f) {
  Queue& q = *queues_[w % queues_.size()];
  std::lock_guard<std::mutex> lock(q.mu);
  if (!bounded_push(q.b.feedback, std::move(f), capacity_)) dropped.fetch_add(1, std::memory_order_relaxed);
}

void Sink::drain(Batch& out) {
  for (auto& qp : queues_) {
    Batch b;
    {
      std::lock_guard<std::mutex> lock(qp->mu);
      std::swap(b, qp->b);
    }
    for (auto& s : b.samples) out.samples.push_back(std::move(s));
    for (auto& p : b.pairs) out.pairs.push_back(std::move(p));
    for (auto& f : b.feedback) out.feedback.push_back(std::move(f));
  }
}

}  // namespace sluice::rollout
