/* cli/cli_json.c: JSON values shared by the commands that print JSON. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int json_errors; /* the command was given --json */

void cli_json_errors(int on) { json_errors = on; }

/* {"command", "ok": false, "error": what, "message": msg} on stdout. */
static void print_failure(const char *cmd, const char *what, const char *msg)
{
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "command", cli_json_text(cmd));
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "error", cli_json_text(what));
        json_object_set_new(o, "message", cli_json_text(msg));
    }
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    if (text) {
        puts(text);
        fflush(stdout);
    }
    free(text);
    json_decref(o);
}

void cli_json_usage_error(const char *cmd, const char *msg)
{
    if (json_errors)
        print_failure(cmd, "usage", msg);
}

json_t *cli_json_text(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j || !s)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_string(copy);
    free(copy);
    return j;
}

void cli_json_failure(const char *cmd, tnrec_err err)
{
    const char *msg = tnrec_error_last();
    if (!msg || !msg[0])
        msg = tnrec_err_name(err);
    print_failure(cmd, tnrec_err_name(err), msg);
}

int cli_fail_json(const char *cmd, tnrec_err err)
{
    cli_json_failure(cmd, err);
    return cli_fail(cmd, err);
}
