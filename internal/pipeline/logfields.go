package pipeline

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/logfields"
)

// normalizeLogs finds each record's trace, span, message, severity and time
// under whatever names its logger used (package logfields), before
// validation, so every receiver's logs are stored and correlated alike.
func normalizeLogs(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				logfields.Normalize(recs.At(k))
			}
		}
	}
}

// CheckLog normalises rec as Ingest will, and says why Ingest would refuse
// it with a resource of resourceAttrs, "" when it would take it: for
// receivers whose protocol answers item by item (Elasticsearch's bulk
// API), which leave the refused items out of the batch (counting them in
// Refused) and say why to the client. A receiver that checks every record
// sets Logs.Checked, so that Ingest does not normalise them again.
func (p *Pipeline) CheckLog(resourceAttrs pcommon.Map, rec plog.LogRecord) string {
	logfields.Normalize(rec)
	return firstOf(checkResource(resourceAttrs, serviceOf(resourceAttrs), p.limits), checkLogRecord(rec, p.limits))
}
