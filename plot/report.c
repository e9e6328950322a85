/* plot/report.c: `tnrec report`: one self-contained HTML page about a
 * training run (its metrics.jsonl and checkpoint configuration) and,
 * optionally, its evaluation on a dataset. Charts are SVG drawn with
 * cairo, samples PNG drawn by tnrec_plot_record; both are inlined as
 * base64 data URIs, so the page needs no network and no other file. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "html.h"
#include "json_util.h"
#include "report_internal.h"
#include "tnrec/tnrec.h"

#define GALLERY_DEFAULT 4

static const char style[] =
    "body{font-family:'DejaVu Sans',sans-serif;margin:24px;color:#222;max-width:1200px}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:32px}h3{font-size:15px}"
    ".charts img.chart{margin:4px;border:1px solid #eee;width:360px;height:auto}.row{display:flex;gap:24px;flex-wrap:wrap}"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "caption{font-weight:bold;padding:4px}pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}"
    ".gallery{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;border:1px solid #ddd;padding:4px}"
    "figure img{width:320px}figcaption{font-size:12px;max-width:320px;word-break:break-all}.note{font-size:12px;color:#555}";

void tnrec_report_options_init(tnrec_report_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->gallery = GALLERY_DEFAULT;
}

/* Fails early, before the evaluation, when the output's directory cannot take the file. */
static tnrec_err check_output(const char *output)
{
    char *copy = strdup(output);
    if (!copy)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    struct stat sb;
    tnrec_err err = TNREC_OK;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        err = tnrec__fail(TNREC_ENOTFOUND, "cannot write the report '%s': directory '%s' does not exist", output, dir);
    else if (access(dir, W_OK) != 0)
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot write the report '%s': directory '%s' is not writable", output, dir);
    free(copy);
    return err;
}

static tnrec_err check_run_dir(const char *run_dir)
{
    struct stat sb;
    if (stat(run_dir, &sb) != 0)
        return tnrec__fail_errno(TNREC_ENOTFOUND, errno, "run directory '%s' cannot be read", run_dir);
    if (!S_ISDIR(sb.st_mode))
        return tnrec__fail(TNREC_EINVAL, "'%s' is not a run directory\nhint: give the -o directory of `tnrec train`", run_dir);
    return TNREC_OK;
}

/* The configuration of the run's checkpoint (best, else last), pretty-printed. */
static tnrec_err run_config(const char *run_dir, char **out)
{
    *out = NULL;
    char *config = NULL;
    tnrec_err err = tnrec_checkpoint_config(&config, run_dir);
    json_t *j = config ? json_loads(config, 0, NULL) : NULL;
    if (!err && !j)
        err = tnrec__fail(TNREC_ECORRUPT, "the checkpoint of run '%s': its configuration is not JSON", run_dir);
    if (j) {
        json_object_del(j, "data_schema");
        if (!(*out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    json_decref(j);
    free(config);
    return err;
}

static void head(FILE *f, const char *run_dir)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tnrec report: ", f);
    html_text(f, run_dir);
    fprintf(f, "</title><style>%s</style></head>\n<body>\n<h1>tnrec report: ", style);
    html_text(f, run_dir);
    fprintf(f, "</h1>\n<p class=\"note\">tnrec %s</p>\n", tnrec_version());
}

static void config_section(FILE *f, const char *config)
{
    fputs("<h2 id=\"config\">Configuration</h2>\n<pre id=\"config-json\">", f);
    html_text(f, config);
    fputs("</pre>\n", f);
}

/* The training data named by the configuration, when it still opens. */
static void train_dataset(FILE *f, const char *config)
{
    json_t *j = json_loads(config, 0, NULL);
    const char *train = tnrec__json_str(j, "train");
    tnrec_dataset *ds = NULL;
    if (train && *train && tnrec_dataset_open(&ds, train) == TNREC_OK) {
        char title[4200];
        snprintf(title, sizeof title, "Training data: %s", train);
        report_dataset(f, title, ds);
        tnrec_dataset_close(ds);
    }
    json_decref(j);
}

static tnrec_err body(FILE *f, const tnrec_report_options *opt, const report_history *h, const char *config,
                      const report_eval *e)
{
    head(f, opt->run_dir);
    tnrec_err err = report_training(f, h);
    if (!err && e)
        err = report_evaluation(f, e);
    if (!err && e)
        err = report_gallery(f, e, opt->gallery > 0 ? opt->gallery : GALLERY_DEFAULT);
    if (err)
        return err;
    config_section(f, config);
    fputs("<h2 id=\"data\">Data</h2>\n", f);
    if (e) {
        char title[4200];
        snprintf(title, sizeof title, "Evaluation data: %s", e->path);
        report_dataset(f, title, e->ds);
    }
    train_dataset(f, config);
    fputs("</body></html>\n", f);
    return TNREC_OK;
}

static tnrec_err write_page(const tnrec_report_options *opt, const report_history *h, const char *config,
                            const report_eval *e)
{
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the report");
    tnrec_err err = body(f, opt, h, config, e);
    if (fclose(f) != 0 && !err)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for the report");
    if (!err)
        err = tnrec__write_file_atomic(opt->output, page, len);
    free(page);
    return err;
}

tnrec_err tnrec_report_write(const tnrec_report_options *opt)
{
    if (!opt || !opt->run_dir || !opt->output || !*opt->output)
        return tnrec__fail(TNREC_EINVAL, "tnrec_report_write: no run directory or output file");
    tnrec_err err = check_run_dir(opt->run_dir);
    if (!err)
        err = check_output(opt->output);
    if (err)
        return err;
    report_history h;
    if ((err = report_history_load(&h, opt->run_dir)))
        return err;
    char *config = NULL;
    report_eval ev;
    int have_eval = 0;
    err = run_config(opt->run_dir, &config);
    if (!err && opt->eval_path) {
        err = report_eval_load(&ev, opt);
        have_eval = !err;
    }
    if (!err)
        err = write_page(opt, &h, config, have_eval ? &ev : NULL);
    if (have_eval)
        report_eval_free(&ev);
    free(config);
    report_history_free(&h);
    return err;
}
