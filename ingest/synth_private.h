/* ingest/synth_private.h: what the synthesiser's two files share.
 * synth_storm.c makes a sample (attributes, then fields); synth.c writes
 * samples as NetCDF-4 files and runs the whole archive. Not installed. */
#ifndef TNREC_SYNTH_PRIVATE_H
#define TNREC_SYNTH_PRIVATE_H

#include "tnrec/synth.h"

/* Attributes, coordinates and catalog fields of sample `index` (no big
 * arrays touched; cheap). Everything is a function of (seed, index,
 * tor_fraction); tor_fraction 0 is TorNet's mix. */
void ing_synth_meta(tnrec_synth_sample *out, uint64_t seed, uint64_t index, double tor_fraction);
/* The six moments and the range-folded mask of s, whose metadata
 * ing_synth_meta filled for the same seed. */
void ing_synth_fields(tnrec_synth_sample *s, uint64_t seed);

#endif
