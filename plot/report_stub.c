/* plot/report_stub.c: tnrec_report_write without cairo. */
#include <string.h>

#include "common.h"
#include "tnrec/report.h"

void tnrec_report_options_init(tnrec_report_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->gallery = 4;
}

tnrec_err tnrec_report_write(const tnrec_report_options *opt)
{
    (void)opt;
    return tnrec__fail(TNREC_EUNSUPPORTED, "this tnrec was built without cairo, so it cannot draw a report\n"
                       "hint: install libcairo2-dev and rebuild");
}
