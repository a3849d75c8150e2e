# tools/e2e/plot.gp — plots of an e2e run (tools/e2e_bench --plot).
#
#   gnuplot -e "datadir='DIR'; outdir='docs/perf'; targets='gateway haproxy nginx'; \
#               subtitle='2 cores, 64-byte payloads'" tools/e2e/plot.gp
#
# Reads DIR/<target>.dat for each target (written by tools/e2e_bench from its
# JSON results; columns: connections, msg/s, p50 ms, p99 ms, msg per proxy
# CPU-second) and writes outdir/throughput.png (msg/s vs connections) and
# outdir/p99.png (p99 round-trip latency vs connections), log-scale x.
if (!exists("datadir")) datadir = "."
if (!exists("outdir")) outdir = "docs/perf"
if (!exists("targets")) targets = "gateway haproxy nginx"
if (!exists("subtitle")) subtitle = ""

set terminal pngcairo size 900,560 enhanced font "DejaVu Sans,11"
set grid
set key top left box opaque
set logscale x 10
set xlabel "client connections (closed-loop ping-pong, 1 message in flight each)"
set style data linespoints
set pointsize 1.3

set output outdir."/throughput.png"
set title "Throughput vs connections".(strlen(subtitle) > 0 ? "\n{/*0.8 ".subtitle."}" : "")
set ylabel "messages per second"
set yrange [0:*]
set format y "%.0s%c"
plot for [t in targets] datadir."/".t.".dat" using 1:2 title t noenhanced lw 2

set output outdir."/p99.png"
set title "p99 round-trip latency vs connections".(strlen(subtitle) > 0 ? "\n{/*0.8 ".subtitle."}" : "")
set ylabel "p99 latency (ms)"
set logscale y 10
set yrange [*:*]
set format y "%g"
set key top left box opaque
plot for [t in targets] datadir."/".t.".dat" using 1:4 title t noenhanced lw 2
