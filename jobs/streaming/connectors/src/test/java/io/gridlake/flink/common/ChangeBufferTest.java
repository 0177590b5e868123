package io.gridlake.flink.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ChangeBufferTest {

  @Test
  void keepsLastChangePerKeyInArrivalOrder() {
    ChangeBuffer<String, Integer> b = new ChangeBuffer<>(null);
    b.upsert("a", 1);
    b.upsert("b", 1);
    b.upsert("a", 0);
    b.delete("b");
    b.upsert("c", 5);
    b.delete("c");
    b.upsert("c", 6);
    assertEquals(List.of(0, 6), b.upserts());
    assertEquals(List.of("b"), b.deletes());
    assertEquals(3, b.size());
    assertEquals(4, b.superseded());
  }

  @Test
  void precedenceKeepsHigherOrderingValueTiesGoToLater() {
    ChangeBuffer<String, long[]> b = new ChangeBuffer<>((old, neu) -> old[0] > neu[0]);
    b.upsert("a", new long[] {10, 1});
    b.upsert("a", new long[] {5, 2}); // lower: ignored
    assertEquals(1, b.upserts().get(0)[1]);
    b.upsert("a", new long[] {10, 3}); // tie: later wins
    assertEquals(3, b.upserts().get(0)[1]);
    b.delete("a"); // delete always wins
    assertTrue(b.upserts().isEmpty());
    b.upsert("a", new long[] {1, 4}); // upsert after delete wins regardless of ordering
    assertEquals(4, b.upserts().get(0)[1]);
    b.clear();
    assertTrue(b.isEmpty());
  }
}
