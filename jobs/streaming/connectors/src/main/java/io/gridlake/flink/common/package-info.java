/** Helpers shared by the GridLake connectors. */
package io.gridlake.flink.common;
