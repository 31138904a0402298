/* fastloss C ABI: the loss kernels from C (and Rust, Go, Julia, ... FFI).
 *
 * Versioned: FASTLOSS_ABI_VERSION is the version this header describes;
 * fastloss_abi_version() the library's. A library accepts callers of its own
 * ABI version (check at start-up: a mismatch means header and library differ).
 * The structs below only ever grow at their end within one ABI version.
 *
 * Errors: every function that can fail returns a fastloss_status; on failure
 * nothing has been written and fastloss_last_error() returns a message naming
 * the argument (thread-local, valid until the thread's next failing call).
 * No C++ exception crosses this boundary.
 *
 * Arrays are a data pointer and strides in elements (not bytes; 0 broadcasts)
 * over the call's logical shape (at most FASTLOSS_MAX_DIMS dimensions). The
 * library cannot see buffer sizes: every element the shape and strides reach
 * must lie inside the caller's buffer, and written arrays must not overlap
 * read ones. Results are bitwise identical for any thread count.
 *
 * Losses are identified by id: fastloss_loss_id("mse_loss"), or iterate
 * 0 .. fastloss_loss_count() - 1 with fastloss_loss_info(). A loss reads
 * `inputs` arrays (in torch's argument order), optionally a per-element
 * weight, and writes `grads` gradients (d loss / d inputs[k] for its
 * differentiable inputs, in the order fastloss_loss_info's names give). */
#ifndef FASTLOSS_H
#define FASTLOSS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FASTLOSS_ABI_VERSION 1
#define FASTLOSS_MAX_DIMS 8
#define FASTLOSS_MAX_INPUTS 4
#define FASTLOSS_MAX_GRADS 3
#define FASTLOSS_MAX_OPTIONS 4

typedef enum {
  FASTLOSS_OK = 0,
  FASTLOSS_ERROR_INVALID_ARGUMENT = 1, /* shapes, ids, options, missing arrays */
  FASTLOSS_ERROR_VALUE = 2,            /* a value the loss refuses (e.g. BCE input outside [0, 1]) */
  FASTLOSS_ERROR_INTERNAL = 3          /* out of memory or a bug: the message says */
} fastloss_status;

typedef enum { FASTLOSS_FLOAT32 = 0, FASTLOSS_FLOAT64 = 1 } fastloss_dtype;

typedef enum { FASTLOSS_REDUCTION_NONE = 0, FASTLOSS_REDUCTION_MEAN = 1, FASTLOSS_REDUCTION_SUM = 2 } fastloss_reduction;

typedef struct {
  void* data; /* NULL: absent */
  int64_t strides[FASTLOSS_MAX_DIMS];
} fastloss_array;

/* One element-wise call over `shape`: reads inputs[0 .. inputs-1], weight
 * (absent: 1) and, for gradients, grad_output (absent: 1); writes loss_out
 * (weight * loss per element) when want_value and it is present (else the
 * loss is only summed), and grads[k] (times weight, grad_output and
 * grad_scale) for each present k when want_grad. */
typedef struct {
  int32_t ndim;
  int64_t shape[FASTLOSS_MAX_DIMS];
  fastloss_array inputs[FASTLOSS_MAX_INPUTS];
  fastloss_array weight, grad_output, loss_out;
  fastloss_array grads[FASTLOSS_MAX_GRADS];
  int32_t want_value, want_grad;
  double grad_scale;                    /* 1.0 for plain gradients */
  double options[FASTLOSS_MAX_OPTIONS]; /* the loss's options, in fastloss_loss_info's order (bools 0/1) */
} fastloss_elementwise_call;

typedef struct {
  double loss;     /* sum of weight * loss over the call (when summed) */
  double weight;   /* sum of the weights */
  uint32_t errors; /* bit k: the loss's value check k failed (see FASTLOSS_ERROR_VALUE) */
} fastloss_totals;

int fastloss_abi_version(void);
const char* fastloss_version(void);
const char* fastloss_last_error(void);

int fastloss_loss_count(void);
/* The id of a loss by its functional name, or -1. */
int fastloss_loss_id(const char* name);
/* Name, number of input arrays, of gradients, and the option names (space
 * separated, in options[] order) of loss `id`. */
fastloss_status fastloss_loss_info(int id, const char** name, int* inputs, int* grads, const char** options);

/* Fills `call` with an empty call (no arrays, want_value, grad_scale 1). */
void fastloss_call_init(fastloss_elementwise_call* call);

/* Runs one element-wise call; `totals` (may be NULL) receives its sums. A
 * failed value check (errors != 0) is reported as FASTLOSS_ERROR_VALUE after
 * the call (arrays written by then hold the loss's NaN/clamped values). */
/* dtype and reduction are ints holding the enum constants above (any other
 * value is an error, not undefined behaviour). */
fastloss_status fastloss_elementwise(int loss, int dtype, const fastloss_elementwise_call* call,
                                     fastloss_totals* totals);

/* The reduced loss of a call (want_value; loss_out ignored) as torch computes
 * it: 'sum' the sum of weight * loss, 'mean' that sum divided by the element
 * count, or by the sum of the weights for weighted l1_loss and mse_loss (as
 * torch 2.13). For gradients of a 'mean', pass grad_scale = 1 / that
 * denominator in a want_grad call. */
fastloss_status fastloss_reduce(int loss, int dtype, int reduction, const fastloss_elementwise_call* call,
                                double* value);

/* Threads (clamped to [1, 4 x the CPUs this process may use]). */
void fastloss_set_num_threads(int n);
int fastloss_get_num_threads(void);
/* Instruction-set level: "baseline", "avx2" or "avx512". select returns
 * FASTLOSS_ERROR_INVALID_ARGUMENT (and changes nothing) if unavailable. */
const char* fastloss_current_isa(void);
fastloss_status fastloss_select_isa(const char* name);

#ifdef __cplusplus
}
#endif

#endif /* FASTLOSS_H */
