package io.gridlake.flink.hudi;

import io.gridlake.flink.common.ChangeBuffer;
import io.gridlake.flink.common.RowStamper;

import org.apache.avro.generic.GenericRecord;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.table.data.RowData;
import org.apache.flink.types.RowKind;
import org.apache.hadoop.conf.Configuration;
import org.apache.hudi.common.model.HoodieKey;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;

/**
 * Buffers the changelog between checkpoints and writes it as one Hudi commit in {@link #flush}.
 *
 * <p>Flink calls {@code flush(false)} before every checkpoint barrier and {@code flush(true)} at
 * the end of bounded input, so every completed checkpoint has its rows committed; rows after the
 * last completed checkpoint are replayed on recovery and re-upserted (idempotent). A failed Hudi
 * write throws, which fails the task: rows are never dropped.
 */
public final class HudiSinkWriter implements SinkWriter<RowData> {

  private static final Logger LOG = LoggerFactory.getLogger(HudiSinkWriter.class);

  private final HudiSinkSpec spec;
  private final AvroRowConverter converter;
  private final HudiTableWriter table;
  private final ChangeBuffer<HoodieKey, GenericRecord> buffer;
  private final int orderingPos;
  private final RowStamper stamper;

  /**
   * Opens the writer: creates or validates the table and starts Hudi's write client.
   *
   * @param spec sink spec
   * @throws IOException when the table cannot be opened
   */
  public HudiSinkWriter(HudiSinkSpec spec) throws IOException {
    this.spec = spec;
    this.converter =
        new AvroRowConverter(spec.rowType(), spec.avroSchemaJson(), spec.recordKeyFields());
    this.orderingPos = converter.schema().getField(spec.orderingField()).pos();
    this.buffer = new ChangeBuffer<>(this::bufferedWins);
    this.stamper = new RowStamper(spec.rowType(), spec.stampField());
    this.table = new HudiTableWriter(spec, new Configuration());
    table.open();
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private boolean bufferedWins(GenericRecord buffered, GenericRecord incoming) {
    Object a = buffered.get(orderingPos);
    Object b = incoming.get(orderingPos);
    return ((Comparable) a).compareTo(b) > 0;
  }

  @Override
  public void write(RowData row, Context context) throws IOException {
    RowKind kind = row.getRowKind();
    if (kind == RowKind.UPDATE_BEFORE) {
      return; // upsert sink: the matching UPDATE_AFTER carries the new version
    }
    GenericRecord record = converter.convert(kind == RowKind.DELETE ? row : stamper.stamp(row));
    HoodieKey key = table.keyOf(record);
    if (kind == RowKind.DELETE) {
      buffer.delete(key);
    } else {
      if (record.get(orderingPos) == null) {
        // Hudi would treat a missing ordering value as "always wins"; refuse instead
        throw new IOException(
            "Row for key "
                + key.getRecordKey()
                + " of Hudi table "
                + spec.tableName()
                + " has a null ordering field '"
                + spec.orderingField()
                + "' (declare it NOT NULL to have Flink reject such rows earlier)");
      }
      buffer.upsert(key, record);
    }
    if (buffer.size() >= spec.maxBufferedRows()) {
      LOG.info(
          "Buffer of Hudi table {} reached {} keys; committing before the next checkpoint",
          spec.tableName(),
          buffer.size());
      commitBuffer();
    }
  }

  @Override
  public void flush(boolean endOfInput) throws IOException {
    commitBuffer();
  }

  private void commitBuffer() throws IOException {
    if (buffer.isEmpty()) {
      return;
    }
    table.commit(buffer.upserts(), buffer.deletes());
    buffer.clear();
  }

  @Override
  public void close() {
    if (!buffer.isEmpty()) {
      LOG.info(
          "Closing Hudi writer of {} with {} uncommitted keys (replayed from the last checkpoint)",
          spec.tableName(),
          buffer.size());
    }
    table.close();
  }
}
