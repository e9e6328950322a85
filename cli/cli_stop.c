/* cli/cli_stop.c: SIGINT and SIGTERM as a request to stop.
 *
 * The handler only records the signal number in a flag; the library's
 * work loops read the flag (tnrec_build_options.stop,
 * tnrec_mirror_options.stop, tnrec_train_stop.request) and stop at the
 * next safe point, keeping what is finished. SA_RESETHAND: a second
 * signal ends the process at once (every file is written under a
 * temporary name, so even that leaves nothing half-written under a final
 * name). SIGXFSZ is ignored so
 * that a file size limit (ulimit -f) is a write error naming the file
 * instead of a core dump. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

int cli_stop_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    return sigaction(SIGXFSZ, &ign, NULL);
}

const volatile sig_atomic_t *cli_stop_flag(void)
{
    return &stop_signal;
}

int cli_stop_signal(void)
{
    return (int)stop_signal;
}

int cli_stop_exit_code(void)
{
    return 128 + (int)stop_signal;
}

const char *cli_stop_name(void)
{
    return stop_signal == SIGINT ? "SIGINT" : stop_signal == SIGTERM ? "SIGTERM" : "a signal";
}

void cli_print_word(FILE *f, const char *a)
{
    int plain = a[0] != '\0';
    for (const char *p = a; *p && plain; p++)
        plain = isalnum((unsigned char)*p) || strchr("/._-=:,+@%", *p) != NULL;
    if (plain) {
        fputs(a, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = a; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", f);
        else
            fputc(*p, f);
    }
    fputc('\'', f);
}

void cli_print_command(FILE *f, const char *cmd, int argc, char **argv)
{
    fprintf(f, "tnrec %s", cmd);
    for (int i = 1; i < argc; i++) {
        fputc(' ', f);
        cli_print_word(f, argv[i]);
    }
}
