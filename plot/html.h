/* plot/html.h: writing the report's HTML: escaping, base64, charts. */
#ifndef TNREC_PLOT_HTML_H
#define TNREC_PLOT_HTML_H

#include <stddef.h>
#include <stdio.h>

#include "chart.h"
#include "tnrec/error.h"

/* Text with & < > " escaped. */
void html_text(FILE *f, const char *s);
/* Bytes as base64 (RFC 4648, no line breaks). */
void html_base64(FILE *f, const unsigned char *data, size_t len);
/* A number with 10 significant digits (as `eval --json`), "NaN" when not finite. */
void html_num(FILE *f, double v);
/* The chart as <img class="chart" src="data:image/svg+xml;base64,...">. */
tnrec_err html_chart(FILE *f, const chart *c);
/* A file's bytes as <img src="data:MIME;base64,..."> with alt text. */
tnrec_err html_image_file(FILE *f, const char *path, const char *mime, const char *alt);

#endif
