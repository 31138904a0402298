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
 * read ones. What it can see it checks: every array's reach, the sum over its
 * axes of |stride| x (extent - 1) elements on either side of data, plus one
 * element, must fit int64 in bytes and not wrap around the address space
 * (else FASTLOSS_ERROR_INVALID_ARGUMENT naming the array); an empty axis
 * counts as extent 1 (an empty array's other strides are checked too, since
 * addresses of its rows are formed). Results are
 * bitwise identical for any thread count.
 *
 * Losses are identified by id: fastloss_loss_id("mse_loss"), or iterate
 * 0 .. fastloss_loss_count() - 1 with fastloss_loss_info(). A loss reads
 * `inputs` arrays (in torch's argument order), optionally a per-element
 * weight, and writes `grads` gradients (d loss / d inputs[k] for its
 * differentiable inputs, in the order fastloss_loss_info's names give).
 *
 * Row-wise losses (cross_entropy, nll_loss, the margin and embedding losses,
 * the distances) have their own ids, calls and metadata (fastloss_rowwise_*
 * below), ctc_loss its own call (fastloss_ctc_*), linear_cross_entropy
 * its own (fastloss_linear_cross_entropy_*). Their call structs
 * start with struct_size (set by their _init function): the library reads
 * only the fields a caller's struct has, so these structs can grow at their
 * end without a new ABI version.
 *
 * ABI version 1 covers all of this: the row-wise, CTC and
 * linear_cross_entropy entry points and FASTLOSS_ERROR_INDEX were added to version 1 without changing any
 * existing struct, function or status (a program built against the first
 * header runs unchanged against this library; one that uses the new entry
 * points needs a library that has them, which its dynamic linker checks). */
#ifndef FASTLOSS_H
#define FASTLOSS_H

#include <stddef.h>
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
  FASTLOSS_ERROR_INTERNAL = 3,         /* out of memory or a bug: the message says */
  FASTLOSS_ERROR_INDEX = 4             /* a class index or CTC label out of range (row-wise and CTC calls) */
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

/* ---- Row-wise losses: a reduction along one axis for every position of the
 * others (the class axis of cross_entropy, nll_loss,
 * multilabel_soft_margin_loss, multi_margin_loss, multilabel_margin_loss;
 * the feature axis of cosine_embedding_loss, triplet_margin_loss,
 * triplet_margin_with_distance_loss (its built-in cosine_distance; its
 * pairwise_distance is triplet_margin_loss), pairwise_distance and
 * cosine_distance). Ids: fastloss_rowwise_loss_id("cross_entropy"), or
 * 0 .. fastloss_rowwise_loss_count() - 1.
 *
 * Every array is a cube (outer, classes, inner) of element strides: torch's
 * (N, C, d1..dk) input is outer = N, classes = C, inner = d1 * ... * dk (the
 * caller merges d1..dk into one strided axis); (N, C) has inner = 1, an
 * unbatched (C) outer = 1. The feature-axis losses take (rows, features, 1).
 * A row is the `classes` elements at one (n, s); rows are numbered
 * r = n * inner + s. Per-row arrays (class-index targets, loss_out,
 * grad_output, cosine_embedding_loss's +-1 target) use strides[0] and
 * strides[2] (strides[1] is not read); the class weight uses strides[1]. */
#define FASTLOSS_MAX_ROW_INPUTS 3
#define FASTLOSS_MAX_ROW_OPTIONS 8

/* What a loss's target holds (fastloss_rowwise_loss_info). */
typedef enum {
  FASTLOSS_TARGET_NONE = 0,      /* no target (the distances, triplets) */
  FASTLOSS_TARGET_INDEX = 1,     /* a class index per row, any integer width */
  FASTLOSS_TARGET_INDEX_ROWS = 2,/* a row of class indices per row (-1 ends a row's list) */
  FASTLOSS_TARGET_FLOAT = 3,     /* a float row (multilabel targets) or a float per row (cosine_embedding_loss) */
  FASTLOSS_TARGET_INDEX_OR_FLOAT = 4 /* either: cross_entropy's class indices or probabilities */
} fastloss_target_kind;

/* Element type of a row-wise call's target: the call's float dtype, or an
 * integer of any width, read as it is. */
typedef enum {
  FASTLOSS_ELEMENT_FLOAT = 0,
  FASTLOSS_ELEMENT_INT8 = 1,
  FASTLOSS_ELEMENT_INT16 = 2,
  FASTLOSS_ELEMENT_INT32 = 3,
  FASTLOSS_ELEMENT_INT64 = 4,
  FASTLOSS_ELEMENT_UINT8 = 5,
  FASTLOSS_ELEMENT_UINT16 = 6,
  FASTLOSS_ELEMENT_UINT32 = 7,
  FASTLOSS_ELEMENT_UINT64 = 8
} fastloss_element_type;

typedef struct {
  void* data; /* NULL: absent */
  int64_t strides[3];
} fastloss_row_array;

typedef struct {
  int64_t struct_size; /* sizeof(fastloss_rowwise_call): set by fastloss_rowwise_call_init */
  int64_t outer, classes, inner;
  fastloss_row_array inputs[FASTLOSS_MAX_ROW_INPUTS]; /* the loss's float row operands, torch's order */
  fastloss_row_array grads[FASTLOSS_MAX_ROW_INPUTS];  /* d loss / d inputs[k]: every one present when want_grad */
  fastloss_row_array target;                          /* fastloss_rowwise_loss_info's target kind says what */
  int32_t target_type;                                /* a fastloss_element_type */
  fastloss_row_array weight;      /* per class (strides[1]); absent: 1 (losses with class weights only) */
  fastloss_row_array grad_output; /* per row; absent: 1 */
  fastloss_row_array loss_out;    /* per row: each row's loss (reduction NONE with want_value: required) */
  int32_t reduction;              /* a fastloss_reduction */
  int32_t want_value, want_grad;
  double grad_scale; /* multiplies every gradient element (the upstream gradient of a reduced loss) */
  /* The loss's options in fastloss_rowwise_loss_info's order (flags 0/1,
   * ignore_index an integer); _init fills torch's defaults, and
   * fastloss_rowwise_option gives an option's index by name. */
  double options[FASTLOSS_MAX_ROW_OPTIONS];
} fastloss_rowwise_call;

int fastloss_rowwise_loss_count(void);
/* The row-wise id of a loss by its functional name, or -1. */
int fastloss_rowwise_loss_id(const char* name);
/* Name, number of float row operands, of gradients, the target kind
 * (fastloss_target_kind) and the option names (space separated) of loss `id`. */
fastloss_status fastloss_rowwise_loss_info(int id, const char** name, int* inputs, int* grads, int* target_kind,
                                           const char** options);
/* The index in options[] of the loss's option `name`, or -1. */
int fastloss_rowwise_option(int id, const char* name);
/* Fills `call` for loss `id`: struct_size, no arrays, inner 1, reduction
 * MEAN, want_value, grad_scale 1, target_type INT64, the loss's defaults. */
fastloss_status fastloss_rowwise_call_init(int id, fastloss_rowwise_call* call);

/* Runs a row-wise loss and writes the reduced loss to *value (may be NULL):
 * MEAN divides by what torch divides by (the summed class weights of the
 * counted rows for cross_entropy/nll_loss class indices; the row count
 * otherwise; NaN when nothing counts), SUM adds the rows, NONE writes
 * loss_out and *value = 0. Gradients (want_grad) are of the reduced loss,
 * times grad_output and grad_scale. Everything is checked before anything is
 * written: shapes, options (as the Python functions check them), every
 * class index of the target (FASTLOSS_ERROR_INDEX naming the first out of
 * range, ignore_index excepted). */
fastloss_status fastloss_rowwise(int loss, int dtype, const fastloss_rowwise_call* call, double* value);

/* ---- CTC loss (torch.nn.functional.ctc_loss, torch 2.13), with a caller-owned
 * workspace (fastloss_ctc_workspace_size). log_probs[t, n, c] at
 * log_probs + t * strides[0] + n * strides[1] + c * strides[2] (elements);
 * labels int64, padded (padded_length = S >= 0: sample n's labels start at
 * n * S) or concatenated (padded_length < 0: the lengths add up to
 * target_count). */
typedef struct {
  int64_t struct_size; /* sizeof(fastloss_ctc_call): set by fastloss_ctc_call_init */
  int64_t max_time, batch, classes;
  const void* log_probs; /* the call's dtype */
  int64_t log_probs_strides[3];
  const int64_t* targets;
  int64_t target_count; /* elements readable at targets */
  int64_t padded_length;
  const int64_t* input_lengths;  /* batch values in [0, max_time] */
  const int64_t* target_lengths; /* batch values (<= padded_length when padded) */
  int64_t blank;                 /* in [0, classes); no label may equal it */
  int32_t reduction;             /* MEAN: each loss / max(target length, 1), then the batch mean */
  int32_t zero_infinity;         /* infinite losses (and their gradients) become 0 */
  void* losses;                  /* optional: per-sample losses, the call's dtype, at losses + n * losses_stride */
  int64_t losses_stride;
  void* grad; /* optional: d loss / d log_probs, the call's dtype, every (T, N, C) element written */
  int64_t grad_strides[3];
  int32_t exact; /* 1: the true derivative -gamma; 0: torch's exp(log_probs) - gamma */
  const double* grad_output; /* NULL: 1; else one value (MEAN/SUM) or batch values at n * grad_output_stride (NONE) */
  int64_t grad_output_stride;
} fastloss_ctc_call;

/* Fills `call`: struct_size, no arrays, padded_length -1, losses_stride 1,
 * reduction MEAN, blank 0. */
void fastloss_ctc_call_init(fastloss_ctc_call* call);
/* Bytes of workspace a call with these sizes needs on up to `threads`
 * threads (max_target_length: the largest target length, or S). */
fastloss_status fastloss_ctc_workspace_size(int64_t max_time, int64_t batch, int64_t max_target_length,
                                            int want_grad, int threads, size_t* bytes);
/* Runs the CTC loss; *value (may be NULL) gets the reduced loss (NONE: the
 * sum of the per-sample losses). Labels out of range or equal to blank:
 * FASTLOSS_ERROR_INDEX; everything is checked before anything is written. */
fastloss_status fastloss_ctc_loss(int dtype, const fastloss_ctc_call* call, void* workspace, size_t workspace_bytes,
                                  double* value);

/* ---- linear_cross_entropy: cross_entropy(input @ linear_weight^T +
 * linear_bias, target) and its gradients without the (rows, V) logits ever
 * existing (Python's fastloss.linear_cross_entropy; fastloss/linear_cross_entropy.h
 * has the full contract), with a caller-owned workspace. Per chunk of R rows:
 * logits = X[chunk] W^T (+ b) into one buffer, the cross-entropy kernel writes
 * the losses and, in place, G = d loss / d logits (scaled by the class weight,
 * grad_output, grad_scale and the 'mean' denominator, computed up front from
 * the targets), then grad_input[chunk] = G W, grad_linear_weight += G^T X[chunk],
 * grad_linear_bias += the column sums of G.
 *
 * Shapes: input (rows, F); linear_weight (V, F) with V = classes * inner
 * (torch's (classes, d1..dk, F) weight: inner = d1 * ... * dk, row v = c *
 * inner + s); linear_bias V values. target, weight, grad_output and loss_out
 * are row arrays over (rows, classes, inner) exactly as in a
 * fastloss_rowwise_call: class indices per (row, s) of any integer width
 * (strides[0], strides[2]), or probabilities over the cube (target_type
 * FASTLOSS_ELEMENT_FLOAT); the class weight at strides[1].
 *
 * Matrix products: sgemm (FASTLOSS_FLOAT32) or dgemm (FASTLOSS_FLOAT64) with
 * cblas_sgemm / cblas_dgemm's argument list, so a BLAS plugs in:
 *   call.sgemm = (fastloss_sgemm_fn)cblas_sgemm;   (an LP64 CBLAS: int sizes)
 * NULL: the built-in blocked GEMM (portable, per ISA level, threaded; reads any
 * strides; bitwise identical for any thread count). A caller's GEMM is called
 * from the calling thread with layout 101 (CblasRowMajor), transposes 111
 * (NoTrans) or 112 (Trans), alpha 1, beta 0 or 1, m, n, k >= 1 and valid
 * leading dimensions; it computes C = alpha op(A) op(B) + beta C (beta 0: C
 * is not read) and returns. Operands a BLAS cannot take as they are (no unit
 * stride, negative or 0 strides, a leading dimension beyond INT_MAX) are
 * copied into the workspace first.
 *
 * Workspace (fastloss_linear_cross_entropy_workspace_size; T = 4 or 8 bytes,
 * each part rounded up to 64 bytes, plus 64): R * V * T (the logits / G
 * buffer); + R * V * T with want_grad, softcap != 0 and inner > 1; + 8 * V
 * with grad_linear_bias; the built-in GEMM + threads * (96 * 256 + 256 * 256)
 * * T of packing panels (fewer threads run when fewer fit, at least one must);
 * a caller's GEMM + R * F * T for an input, + V * F * T for a linear_weight,
 * + R * F * T for a grad_input, + V * F * T for a grad_linear_weight that is
 * not a BLAS matrix. R = chunk_size, or by default rows of a logits buffer of
 * about 64 MB (at most 4096), at most rows, at least 1. */
typedef void (*fastloss_sgemm_fn)(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                                  const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
typedef void (*fastloss_dgemm_fn)(int layout, int trans_a, int trans_b, int m, int n, int k, double alpha,
                                  const double* a, int lda, const double* b, int ldb, double beta, double* c,
                                  int ldc);

/* A matrix: element (i, j) at data + i * strides[0] + j * strides[1] (elements, any sign, 0 broadcasts). */
typedef struct {
  void* data; /* NULL: absent */
  int64_t strides[2];
} fastloss_matrix;

typedef struct {
  int64_t struct_size; /* sizeof(fastloss_linear_cross_entropy_call): set by _call_init */
  int64_t rows;        /* N (1 for an unbatched input) */
  int64_t features;    /* F: in_features */
  int64_t classes;     /* C: num_classes */
  int64_t inner;       /* d1 * ... * dk of a K-dimensional linear_weight; 1 for (C, F) */
  fastloss_matrix input;         /* (rows, F), read */
  fastloss_matrix linear_weight; /* (V, F), read */
  const void* linear_bias;       /* V values at linear_bias + v * linear_bias_stride; NULL: none */
  int64_t linear_bias_stride;
  fastloss_row_array target; /* class indices per (row, s), or probabilities (rows, classes, inner) */
  int32_t target_type;       /* a fastloss_element_type */
  fastloss_row_array weight;      /* class weight (strides[1]); absent: 1 */
  fastloss_row_array grad_output; /* REDUCTION_NONE: per row (absent: 1); else not read (grad_scale) */
  fastloss_row_array loss_out;    /* REDUCTION_NONE with want_value: per row (required then) */
  /* Gradients (want_grad): each optional (NULL: not computed), at least one given. */
  fastloss_matrix grad_input;         /* (rows, F) */
  fastloss_matrix grad_linear_weight; /* (V, F) */
  void* grad_linear_bias;             /* V values (only with a linear_bias) */
  int64_t grad_linear_bias_stride;
  int32_t reduction; /* MEAN divides by the summed class weight of the counted rows (rows * inner for probabilities) */
  int32_t want_value, want_grad;
  double grad_scale; /* multiplies every gradient (the upstream gradient of a reduced loss) */
  int64_t ignore_index;   /* -100 */
  double label_smoothing; /* 0 */
  double z_loss;          /* 0 */
  double softcap;         /* 0: none */
  int64_t chunk_size;     /* rows per chunk; 0: the default */
  fastloss_sgemm_fn sgemm; /* FASTLOSS_FLOAT32 products; NULL: built in */
  fastloss_dgemm_fn dgemm; /* FASTLOSS_FLOAT64 products; NULL: built in */
} fastloss_linear_cross_entropy_call;

/* Fills `call`: struct_size, no arrays, inner 1, strides 1 for the bias
 * vectors, target_type INT64, reduction MEAN, want_value, grad_scale 1,
 * ignore_index -100, the built-in GEMM. */
void fastloss_linear_cross_entropy_call_init(fastloss_linear_cross_entropy_call* call);
/* Bytes of workspace `call` needs on up to `threads` threads (the formula above). */
fastloss_status fastloss_linear_cross_entropy_workspace_size(int dtype, const fastloss_linear_cross_entropy_call* call,
                                                             int threads, size_t* bytes);
/* Runs the call; *value (may be NULL) gets the reduced loss (NONE: 0, the
 * losses are in loss_out). Everything is checked before anything is written:
 * sizes, arrays, strides, options (as the Python function checks them), the
 * workspace size, every class index (FASTLOSS_ERROR_INDEX naming the first
 * out of range, ignore_index excepted). */
fastloss_status fastloss_linear_cross_entropy(int dtype, const fastloss_linear_cross_entropy_call* call,
                                              void* workspace, size_t workspace_bytes, double* value);

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
