// filters/ip_limiter/shed_list.h — a worker's admitted connections in
// admission order, the candidates for shedding at max_connections.
//
// Defines ShedList: an intrusive, circular, doubly linked list of Nodes
// (each IpLimiterFilter admitted under `"at_max_connections": "shed"` is
// one), oldest first. Linking and unlinking are O(1) and allocate nothing;
// a node unlinks itself when destroyed.
//
// Where state lives: one ShedList per worker (in the worker's
// WorkerServices, so it spans every listener and config generation of that
// worker); used only on that worker's thread, no locks.
#pragma once

#include <cstddef>

namespace gw {
namespace ip_limiter {

class ShedList {
 public:
  // One list member (16 bytes). Not copyable: its address is its identity.
  class Node {
   public:
    Node() = default;
    ~Node() { unlink(); }
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    bool linked() const { return next_ != nullptr; }
    // Leaves its list (no-op when not linked).
    void unlink() {
      if (next_ == nullptr) return;
      prev_->next_ = next_;
      next_->prev_ = prev_;
      prev_ = next_ = nullptr;
    }

   private:
    friend class ShedList;
    Node* prev_ = nullptr;
    Node* next_ = nullptr;
  };

  ShedList() { head_.prev_ = head_.next_ = &head_; }
  // Unlinks every node still in the list (their destructors then do nothing).
  ~ShedList() {
    while (Node* n = front()) n->unlink();
    head_.prev_ = head_.next_ = nullptr;
  }
  ShedList(const ShedList&) = delete;
  ShedList& operator=(const ShedList&) = delete;

  // Appends `n` (the newest); unlinks it from any list first.
  void pushBack(Node& n) {
    n.unlink();
    n.prev_ = head_.prev_;
    n.next_ = &head_;
    head_.prev_->next_ = &n;
    head_.prev_ = &n;
  }
  // The oldest node, or nullptr when empty.
  Node* front() const { return head_.next_ == &head_ ? nullptr : head_.next_; }
  bool empty() const { return front() == nullptr; }
  // Nodes linked now (walks the list: tests and diagnostics only).
  size_t size() const {
    size_t n = 0;
    for (const Node* p = head_.next_; p != &head_; p = p->next_) ++n;
    return n;
  }

 private:
  Node head_;  // the sentinel: head_.next_ is the oldest, head_.prev_ the newest
};

}  // namespace ip_limiter
}  // namespace gw
