package io.gridlake.flink.hudi;

import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.ProviderContext;
import org.apache.flink.table.connector.sink.DataStreamSinkProvider;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.data.RowData;

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

  /**
   * The writer runs in a task of its own, never chained to the operator that feeds it.
   *
   * <p>The writer commits in {@code flush}, which Flink calls before forwarding the checkpoint
   * barrier. Chained behind an operator whose output also feeds later layers (ODS rows feed DWD,
   * DWD feeds DWS), that commit would hold the barrier back from everything downstream: one Hudi
   * commit per layer in series per checkpoint. In a task of its own, the barrier passes at once and
   * every table's commit runs at the same time.
   */
  @Override
  public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
    return new DataStreamSinkProvider() {
      @Override
      public DataStreamSink<?> consumeDataStream(
          ProviderContext provider, DataStream<RowData> rows) {
        DataStreamSink<RowData> sink = rows.sinkTo(new HudiSink(spec)).setParallelism(1);
        provider.generateUid("hudi-writer").ifPresent(sink::uid);
        sink.name("hudi " + spec.tableName()).disableChaining();
        return sink;
      }
    };
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
