/* plot/plot_stub.c: tnrec_plot_record in a build without cairo. The
 * colour maps (colormap.c) work; drawing answers with what to install. */
#include "common.h"
#include "plot_internal.h"

int tnrec_plot_available(void) { return 0; }

tnrec_err tnrec_plot_record(const tnrec_dataset *ds, const char *ds_name, uint64_t index,
                            const tnrec_plot_options *opt, const char *path, tnrec_plot_result *result)
{
    (void)ds, (void)ds_name, (void)index, (void)opt, (void)path, (void)result;
    return tnrec__fail(TNREC_EUNSUPPORTED, "this tnrec was built without cairo, which draws the pictures\n"
                       "hint: install the Debian package libcairo2-dev (scripts/deps.sh does) and rebuild");
}
