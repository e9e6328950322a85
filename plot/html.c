/* plot/html.c: HTML pieces of the report. */
#include <math.h>
#include <stdlib.h>

#include "common.h"
#include "html.h"

void html_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

void html_base64(FILE *f, const unsigned char *d, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < len ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < len ? d[i + 2] : 0);
        fputc(tab[(v >> 18) & 63], f);
        fputc(tab[(v >> 12) & 63], f);
        fputc(i + 1 < len ? tab[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < len ? tab[v & 63] : '=', f);
    }
}

void html_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("NaN", f);
}

tnrec_err html_chart(FILE *f, const chart *c)
{
    char *svg = NULL;
    size_t len = 0;
    tnrec_err err = chart_svg(c, &svg, &len);
    if (err)
        return err;
    fputs("<img class=\"chart\" alt=\"", f);
    html_text(f, c->title);
    fputs("\" src=\"data:image/svg+xml;base64,", f);
    html_base64(f, (const unsigned char *)svg, len);
    fputs("\">\n", f);
    free(svg);
    return TNREC_OK;
}

tnrec_err html_image_file(FILE *f, const char *path, const char *mime, const char *alt)
{
    uint8_t *data = NULL;
    size_t len = 0;
    tnrec_err err = tnrec__read_file(path, &data, &len);
    if (err)
        return err;
    fprintf(f, "<img alt=\"");
    html_text(f, alt);
    fprintf(f, "\" src=\"data:%s;base64,", mime);
    html_base64(f, data, len);
    fputs("\">", f);
    free(data);
    return TNREC_OK;
}
