/* common/hidden.h: TNREC__HIDDEN keeps a library-private function out of
 * libtnrec's dynamic symbol table.
 *
 * libtnrec exports every symbol by default, because the CUDA module
 * (train/gpu/) links it and calls some of its private helpers. Helpers
 * that only libtnrec itself calls are marked TNREC__HIDDEN, so that the
 * list of exported symbols stays what programs and the module see. */
#ifndef TNREC_HIDDEN_H
#define TNREC_HIDDEN_H

#define TNREC__HIDDEN __attribute__((visibility("hidden")))

#endif
