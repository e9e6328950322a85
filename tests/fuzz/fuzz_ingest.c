/* tests/fuzz/fuzz_ingest.c: libFuzzer target for the NetCDF sample reader
 * of `tnrec build`: any bytes, read as one TorNet sample from memory
 * (netcdf-c's nc_open_mem and HDF5's file image), checked and encoded.
 * The result is ignored: the target only has to return, never crash.
 * fuzz_replay.c runs it over tests/fuzz/corpus/ingest under plain ctest. */
#include <stddef.h>
#include <stdint.h>

#include "tnrec/tnrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)tnrec_ingest_check_mem(data, size, "fuzz-input.nc");
    return 0;
}
