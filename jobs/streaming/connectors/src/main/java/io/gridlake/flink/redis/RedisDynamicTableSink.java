package io.gridlake.flink.redis;

import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;

/**
 * Planner-facing side of the {@code gridlake-redis} sink: an upsert sink (INSERT, UPDATE_AFTER,
 * DELETE). With a {@code sink.parallelism} different from the input's, Flink shuffles the rows by
 * primary key, so all changes of one key reach the same writer.
 */
public final class RedisDynamicTableSink implements DynamicTableSink {

  private final RedisSinkSpec spec;
  private final Integer parallelism;

  public RedisDynamicTableSink(RedisSinkSpec spec, Integer parallelism) {
    this.spec = spec;
    this.parallelism = parallelism;
  }

  @Override
  public ChangelogMode getChangelogMode(ChangelogMode requestedMode) {
    return ChangelogMode.upsert();
  }

  @Override
  public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
    return SinkV2Provider.of(new RedisSink(spec), parallelism);
  }

  @Override
  public DynamicTableSink copy() {
    return new RedisDynamicTableSink(spec, parallelism);
  }

  @Override
  public String asSummaryString() {
    return "gridlake-redis(" + spec.keyPrefix() + ")";
  }

  public RedisSinkSpec spec() {
    return spec;
  }
}
