package io.gridlake.flink.redis;

import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;

/**
 * The serving copy's write protocol, as {@code infra/serving_store.py} defines it: the very same
 * two Lua scripts ({@code infra/serving_lua/upsert.lua} and {@code delete.lua}, packaged into this
 * jar as resources of this package) with the same {@code KEYS} and {@code ARGV}.
 *
 * <ul>
 *   <li>Upsert: {@code KEYS} = the row's hash, the index; {@code ARGV} = member, index score,
 *       ordering field, ordering value, number n of non-null columns, n column/value pairs, the
 *       null columns. Refused when the stored hash's ordering value is greater.
 *   <li>Delete: {@code KEYS} = the row's hash, the index; {@code ARGV} = member, ordering field,
 *       the delete's ordering value. Refused when the stored hash's ordering value is greater.
 * </ul>
 *
 * <p>An empty ordering value always applies. Values are rendered by {@link RedisRowConverter} (the
 * layout contract {@code lakehouse/contracts/serving.py}); whole index scores as integer digits,
 * other scores in {@code Double.toString}. {@code ServingProtocolTest} and {@code
 * tests/infra/test_serving_store.py} check one test vector ({@code serving-vectors.json}).
 */
public final class ServingProtocol implements Serializable {

  private static final long serialVersionUID = 1L;

  /** Body of {@code upsert.lua}. */
  public static final String UPSERT_SCRIPT = script("upsert.lua");

  /** Body of {@code delete.lua}. */
  public static final String DELETE_SCRIPT = script("delete.lua");

  /** SHA-1 of {@link #UPSERT_SCRIPT}, as {@code EVALSHA} names it. */
  public static final String UPSERT_SHA = sha1(UPSERT_SCRIPT);

  /** SHA-1 of {@link #DELETE_SCRIPT}. */
  public static final String DELETE_SHA = sha1(DELETE_SCRIPT);

  private static final double EXACT_INT = 0x1p53;

  private final RedisRowConverter converter;
  private final String orderingField;
  private final int orderingPos;

  /**
   * Creates the protocol of one table.
   *
   * @param rowType physical row type
   * @param keyFields primary key columns
   * @param scoreField index score column or {@code null}
   * @param orderingField column ordering two versions of a key, or {@code null}
   */
  public ServingProtocol(
      RowType rowType, List<String> keyFields, String scoreField, String orderingField) {
    this.converter = new RedisRowConverter(rowType, keyFields, scoreField);
    this.orderingField = orderingField == null ? "" : orderingField;
    this.orderingPos = orderingField == null ? -1 : rowType.getFieldIndex(orderingField);
    if (orderingField != null && orderingPos < 0) {
      throw new IllegalArgumentException(
          "ordering field '" + orderingField + "' is not a column of " + rowType.getFieldNames());
    }
  }

  /**
   * The row's key suffix, its index member.
   *
   * @param row the row
   * @return primary key values joined by {@code |}
   */
  public String member(RowData row) {
    return converter.keySuffix(row);
  }

  /**
   * The row's ordering value as stored.
   *
   * @param row the row
   * @return the rendered value, {@code ""} when there is no ordering field or it is null
   */
  public String orderingValue(RowData row) {
    if (orderingPos < 0) {
      return "";
    }
    String v = converter.value(row, orderingPos);
    return v == null ? "" : v;
  }

  /**
   * {@code ARGV} of {@code upsert.lua} for one row.
   *
   * @param row the row (already stamped)
   * @return member, score, ordering field, ordering value, n, n column/value pairs, null columns
   */
  public List<String> upsertArgs(RowData row) {
    String[] names = converter.names();
    List<String> pairs = new ArrayList<>(2 * names.length);
    List<String> nulls = new ArrayList<>();
    for (int i = 0; i < names.length; i++) {
      String v = converter.value(row, i);
      if (v == null) {
        nulls.add(names[i]);
      } else {
        pairs.add(names[i]);
        pairs.add(v);
      }
    }
    List<String> args = new ArrayList<>(5 + pairs.size() + nulls.size());
    args.add(member(row));
    args.add(scoreArg(converter.score(row)));
    args.add(orderingField);
    args.add(orderingValue(row));
    args.add(Integer.toString(pairs.size() / 2));
    args.addAll(pairs);
    args.addAll(nulls);
    return args;
  }

  /**
   * {@code ARGV} of {@code delete.lua} for one member.
   *
   * @param member the row's key suffix
   * @param version the delete's ordering value ({@code ""}: removed whatever the hash holds)
   * @return member, ordering field, ordering value
   */
  public List<String> deleteArgs(String member, String version) {
    return List.of(member, orderingField, orderingField.isEmpty() ? "" : version);
  }

  /**
   * {@code KEYS} of both scripts.
   *
   * @param keyPrefix the table's key prefix
   * @param member the row's key suffix
   * @return the row's hash, the index
   */
  public static List<String> keys(String keyPrefix, String member) {
    return List.of(keyPrefix + member, keyPrefix + "index");
  }

  /**
   * An index score as the scripts receive it (as {@code infra.serving_store.score_arg}).
   *
   * @param score the score
   * @return integer digits for a whole number below 2^53 in magnitude, else {@code
   *     Double.toString}
   */
  public static String scoreArg(double score) {
    if (score == Math.rint(score) && Math.abs(score) < EXACT_INT) {
      return Long.toString((long) score);
    }
    return Double.toString(score);
  }

  /**
   * An ordering value as a number, to compare two buffered changes as the scripts do.
   *
   * @param value a rendered ordering value
   * @return the number, NaN when empty or not a number (such a change always applies)
   */
  static double orderOf(String value) {
    if (value.isEmpty()) {
      return Double.NaN;
    }
    try {
      return Double.parseDouble(value);
    } catch (NumberFormatException e) {
      return Double.NaN;
    }
  }

  private static String script(String name) {
    try (InputStream in = ServingProtocol.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException(
            "Lua script "
                + name
                + " is missing from the connector jar (a resource from infra/serving_lua)");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String sha1(String text) {
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-1").digest(text.getBytes(StandardCharsets.UTF_8));
      StringBuilder sb = new StringBuilder(40);
      for (byte b : digest) {
        sb.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
      }
      return sb.toString();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
