package io.gridlake.flink.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.json.JsonMapper;

import org.apache.flink.table.functions.ScalarFunction;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code GRIDLAKE_REASON(payload, spec)}: why a raw message violates its contract, or NULL.
 *
 * <p>The same reasons, in the same order, as the Python {@code MessageContract.validate}
 * ({@code empty_payload}, {@code malformed_json}, {@code not_an_object},
 * {@code missing_field:X}, {@code bad_type:X}); the spec string is rendered from the contract by
 * {@code jobs/common/ddl.py} as {@code name:type:required} items separated by {@code ;}. It is a
 * JVM function rather than SQL because the equivalent SQL expression (several JSON_QUERY calls
 * per field) made planning the multi-topic job take minutes.
 */
public final class ContractReason extends ScalarFunction {

  private static final long serialVersionUID = 1L;

  private static final ObjectMapper MAPPER =
      JsonMapper.builder()
          // Python's json module accepts NaN/Infinity (then rejected as bad_type) and
          // refuses trailing data: mirror both.
          .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private static final ConcurrentHashMap<String, List<FieldSpec>> SPECS =
      new ConcurrentHashMap<>();

  private record FieldSpec(String name, String type, boolean required) {}

  private static List<FieldSpec> parse(String spec) {
    List<FieldSpec> out = new ArrayList<>();
    for (String item : spec.split(";")) {
      if (item.isEmpty()) {
        continue;
      }
      String[] parts = item.split(":");
      if (parts.length != 3) {
        throw new IllegalArgumentException("bad contract spec item '" + item + "'");
      }
      out.add(new FieldSpec(parts[0], parts[1], "1".equals(parts[2])));
    }
    return out;
  }

  /**
   * Evaluates the contract.
   *
   * @param payload raw message value
   * @param spec contract spec ({@code name:type:required;...})
   * @return the first violation, or null when the payload conforms
   */
  public String eval(String payload, String spec) {
    if (payload == null || payload.trim().isEmpty()) {
      return "empty_payload";
    }
    JsonNode root;
    try {
      root = MAPPER.readTree(payload);
    } catch (Exception e) {
      return "malformed_json";
    }
    if (root == null || root.isMissingNode()) {
      return "malformed_json";
    }
    if (!root.isObject()) {
      return "not_an_object";
    }
    for (FieldSpec f : SPECS.computeIfAbsent(spec, ContractReason::parse)) {
      JsonNode v = root.get(f.name());
      if (v == null || v.isNull()) {
        if (f.required()) {
          return "missing_field:" + f.name();
        }
        continue;
      }
      if (!conforms(v, f.type())) {
        return "bad_type:" + f.name();
      }
    }
    return null;
  }

  private static boolean conforms(JsonNode v, String type) {
    switch (type) {
      case "string":
        return v.isTextual() && !v.asText().isEmpty();
      case "int":
      case "bigint":
      case "timestamp":
        return v.isIntegralNumber();
      case "double":
        return v.isNumber() && Double.isFinite(v.asDouble());
      case "boolean":
        return v.isBoolean();
      default:
        throw new IllegalArgumentException("unknown field type '" + type + "'");
    }
  }
}
