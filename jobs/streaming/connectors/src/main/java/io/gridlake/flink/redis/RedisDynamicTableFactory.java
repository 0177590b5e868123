package io.gridlake.flink.redis;

import io.gridlake.flink.common.ConnectorTypes;
import io.gridlake.flink.common.RowStamper;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

import java.net.URI;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Factory of {@code 'connector' = 'gridlake-redis'}. */
public final class RedisDynamicTableFactory implements DynamicTableSinkFactory {

  public static final String IDENTIFIER = "gridlake-redis";

  @Override
  public String factoryIdentifier() {
    return IDENTIFIER;
  }

  @Override
  public Set<ConfigOption<?>> requiredOptions() {
    Set<ConfigOption<?>> s = new HashSet<>();
    s.add(RedisOptions.URL);
    s.add(RedisOptions.KEY_PREFIX);
    return s;
  }

  @Override
  public Set<ConfigOption<?>> optionalOptions() {
    Set<ConfigOption<?>> s = new HashSet<>();
    s.add(RedisOptions.INDEX_SCORE_FIELD);
    s.add(RedisOptions.ORDERING_FIELD);
    s.add(RedisOptions.WRITE_BATCH_MAX_ROWS);
    s.add(RedisOptions.MAX_RETRIES);
    s.add(RedisOptions.RETRY_BACKOFF);
    s.add(RedisOptions.TIMEOUT);
    s.add(RowStamper.STAMP_FIELD);
    s.add(FactoryUtil.SINK_PARALLELISM);
    return s;
  }

  @Override
  public DynamicTableSink createDynamicTableSink(Context context) {
    FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
    helper.validate();
    ReadableConfig options = helper.getOptions();
    ResolvedSchema schema = context.getCatalogTable().getResolvedSchema();
    RowType rowType = (RowType) context.getPhysicalRowDataType().getLogicalType();
    RedisSinkSpec spec = buildSpec(options, schema, rowType);
    return new RedisDynamicTableSink(
        spec, options.getOptional(FactoryUtil.SINK_PARALLELISM).orElse(null));
  }

  /**
   * Validates the DDL and options and builds the sink spec.
   *
   * @param options connector options
   * @param schema resolved schema
   * @param rowType physical row type
   * @return the spec
   */
  static RedisSinkSpec buildSpec(ReadableConfig options, ResolvedSchema schema, RowType rowType) {
    List<String> pk = ConnectorTypes.requirePrimaryKey(schema, IDENTIFIER);
    String url = options.get(RedisOptions.URL).trim();
    URI uri;
    try {
      uri = URI.create(url);
    } catch (IllegalArgumentException e) {
      throw new ValidationException("'url' is not a valid URI: " + url, e);
    }
    if (!"redis".equals(uri.getScheme()) && !"rediss".equals(uri.getScheme())
        || uri.getHost() == null) {
      throw new ValidationException(
          "'url' must look like redis://host:port/db, got '" + url + "'.");
    }
    String prefix = options.get(RedisOptions.KEY_PREFIX);
    if (prefix.isEmpty()) {
      throw new ValidationException("'key.prefix' must not be empty.");
    }
    String score = options.getOptional(RedisOptions.INDEX_SCORE_FIELD).orElse("").trim();
    if (score.isEmpty()) {
      score = null;
    } else {
      ConnectorTypes.requirePhysicalColumn(schema, score, RedisOptions.INDEX_SCORE_FIELD.key());
    }
    for (String k : pk) {
      ConnectorTypes.requirePhysicalColumn(schema, k, "PRIMARY KEY");
    }
    RedisRowConverter.validate(rowType, score);
    String ordering = options.getOptional(RedisOptions.ORDERING_FIELD).orElse("").trim();
    if (ordering.isEmpty()) {
      ordering = null;
    } else {
      Column col =
          ConnectorTypes.requirePhysicalColumn(
              schema, ordering, RedisOptions.ORDERING_FIELD.key());
      LogicalType ot = col.getDataType().getLogicalType();
      // compared as numbers by the scripts: only types rendered as numbers qualify
      if (!(ConnectorTypes.isOneOf(
              ot,
              LogicalTypeRoot.TINYINT,
              LogicalTypeRoot.SMALLINT,
              LogicalTypeRoot.INTEGER,
              LogicalTypeRoot.BIGINT,
              LogicalTypeRoot.FLOAT,
              LogicalTypeRoot.DOUBLE,
              LogicalTypeRoot.DECIMAL)
          || ConnectorTypes.isTimestamp(ot))) {
        throw new ValidationException(
            "'ordering.field' column '"
                + ordering
                + "' has type "
                + ot.asSummaryString()
                + "; it must be numeric, TIMESTAMP or TIMESTAMP_LTZ.");
      }
    }
    int maxRows = options.get(RedisOptions.WRITE_BATCH_MAX_ROWS);
    int retries = options.get(RedisOptions.MAX_RETRIES);
    if (maxRows < 1 || retries < 0) {
      throw new ValidationException(
          "'write.batch.max.rows' must be at least 1 and 'max.retries' at least 0.");
    }
    return new RedisSinkSpec(
        url,
        prefix,
        rowType,
        pk,
        score,
        maxRows,
        retries,
        options.get(RedisOptions.RETRY_BACKOFF).toMillis(),
        (int) options.get(RedisOptions.TIMEOUT).toMillis(),
        RowStamper.stampField(options, schema, pk),
        ordering);
  }
}
