"""Layer transforms as SQL, one definition shared by Flink and Spark."""
