package io.gridlake.flink.hudi;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;

import java.io.IOException;

/** Sink V2 writing a changelog of rows into a Hudi table (one commit per checkpoint). */
public final class HudiSink implements Sink<RowData> {

  private static final long serialVersionUID = 1L;

  private final HudiSinkSpec spec;

  public HudiSink(HudiSinkSpec spec) {
    this.spec = spec;
  }

  @Override
  public SinkWriter<RowData> createWriter(WriterInitContext context) throws IOException {
    if (context.getTaskInfo().getNumberOfParallelSubtasks() != 1) {
      throw new IllegalStateException(
          "The gridlake-hudi sink must run with parallelism 1 (single Hudi writer per table)");
    }
    return new HudiSinkWriter(spec);
  }

  public HudiSinkSpec spec() {
    return spec;
  }
}
