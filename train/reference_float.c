/* train/reference_float.c: the reference layers again, in float.
 * The trainer runs the cheap layers (BN, activations, pooling, dropout,
 * dense, loss) with these; see train/reference.c for the code itself. */
#define REF_REAL float
#define REF_FN(name) trn_ref32_##name
#include "reference.c"
