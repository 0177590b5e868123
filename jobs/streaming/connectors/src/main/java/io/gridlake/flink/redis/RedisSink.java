package io.gridlake.flink.redis;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;

/** Sink V2 maintaining a Redis serving copy of a changelog of rows. */
public final class RedisSink implements Sink<RowData> {

  private static final long serialVersionUID = 1L;

  private final RedisSinkSpec spec;

  public RedisSink(RedisSinkSpec spec) {
    this.spec = spec;
  }

  @Override
  public SinkWriter<RowData> createWriter(WriterInitContext context) {
    return new RedisSinkWriter(spec);
  }

  public RedisSinkSpec spec() {
    return spec;
  }
}
