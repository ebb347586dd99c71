package wal

import "github.com/prometheus/client_golang/prometheus"

// metrics are the log's own figures, on the server's registry.
type metrics struct {
	records, bytes, groups, syncs prometheus.Counter
	failures, refused             prometheus.Counter
	cutBytes                      prometheus.Counter
	checkpoints                   prometheus.Counter
	commitSeconds                 prometheus.Histogram
	syncSeconds                   prometheus.Histogram
	checkpointSeconds             prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, l *Log) *metrics {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_records_total", Help: "Batches appended to the write-ahead log."}),
		bytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_bytes_total", Help: "Bytes of batches appended to the write-ahead log."}),
		groups: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_commits_total",
			Help: "Group commits: writes each shared by the appends waiting at the time."}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_fsyncs_total",
			Help: "Fsyncs of the write-ahead log, each covering every group written before it started."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_failures_total", Help: "Writes or fsyncs of the write-ahead log that failed; their requests were refused as retryable."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_refused_total",
			Help: "Appends refused because the data directory's disk is under --min-free-disk."}),
		cutBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_cut_bytes_total",
			Help: "Bytes of a torn or corrupt tail cut off the write-ahead log at start."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "skytrail_wal_checkpoints_total", Help: "Checkpoints: the stores made durable what the log held, and its older segments were deleted."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skytrail_wal_commit_seconds",
			Help: "Time to write one group of appends to the operating system.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skytrail_wal_fsync_seconds",
			Help: "Time one fsync of the write-ahead log took; with --wal-sync=always a request waits for one, overlapping its storing.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		checkpointSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skytrail_wal_checkpoint_seconds",
			Help: "Time a checkpoint took, the stores' flush included.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.bytes, m.groups, m.syncs, m.failures, m.refused, m.cutBytes, m.checkpoints, m.commitSeconds, m.syncSeconds, m.checkpointSeconds,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skytrail_wal_size_bytes", Help: "Bytes the write-ahead log's segments take on disk."},
				func() float64 { return float64(l.Size()) }))
	}
	return m
}
