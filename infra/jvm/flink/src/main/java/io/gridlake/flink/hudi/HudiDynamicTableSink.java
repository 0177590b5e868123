package io.gridlake.flink.hudi;

import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;

/**
 * Planner-facing side of the {@code gridlake-hudi} sink: an upsert sink (INSERT, UPDATE_AFTER,
 * DELETE) running with parallelism 1: one writer per table in the job. Other processes (Spark
 * backfills) may write the same table when the DDL passes Hudi's optimistic concurrency
 * control options (a lock provider; GridLake's {@code lake} settings do by default).
 */
public final class HudiDynamicTableSink implements DynamicTableSink {

  private final HudiSinkSpec spec;

  public HudiDynamicTableSink(HudiSinkSpec spec) {
    this.spec = spec;
  }

  @Override
  public ChangelogMode getChangelogMode(ChangelogMode requestedMode) {
    return ChangelogMode.upsert();
  }

  @Override
  public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
    return SinkV2Provider.of(new HudiSink(spec), 1);
  }

  @Override
  public DynamicTableSink copy() {
    return new HudiDynamicTableSink(spec);
  }

  @Override
  public String asSummaryString() {
    return "gridlake-hudi(" + spec.tableName() + ")";
  }

  public HudiSinkSpec spec() {
    return spec;
  }
}
