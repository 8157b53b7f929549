import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TransactionAbortedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Kafka's own Java producer, driven by a script on stdin (tests/integration/test_foreign_batches.py).
 *
 * Run on the broker's classpath as a single-file program:
 * {@code java -cp '<kafka jars>/*' ScriptedProducer.java BOOTSTRAP TOPIC < script}. Lines:
 * {@code PRODUCER compression batch.size linger.ms transactional.id|-} opens a new producer (closing the last),
 * {@code BEGIN}, {@code COMMIT}, {@code ABORT} run a transaction, {@code FLUSH} waits for delivery, and
 * {@code R key value} sends one record, key and value in base64 ({@code -} for null), partitioned by key.
 */
public class ScriptedProducer {
    public static void main(String[] args) {
        try {
            run(args);
        } catch (Exception e) {
            // Reported here: the source launcher fails on exceptions thrown from other threads.
            System.err.println("ScriptedProducer failed: " + e);
            System.exit(1);
        }
    }

    private static void run(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        Base64.Decoder b64 = Base64.getDecoder();
        KafkaProducer<byte[], byte[]> producer = null;
        long sent = 0;
        Exception[] failed = {null};
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.split(" ");
            switch (f[0]) {
                case "PRODUCER" -> {
                    if (producer != null) producer.close();
                    Properties p = new Properties();
                    p.put("bootstrap.servers", bootstrap);
                    p.put("compression.type", f[1]);
                    p.put("batch.size", f[2]);
                    p.put("linger.ms", f[3]);
                    p.put("acks", "all");
                    if (!f[4].equals("-")) p.put("transactional.id", f[4]);
                    producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
                    if (!f[4].equals("-")) producer.initTransactions();
                }
                case "BEGIN" -> producer.beginTransaction();
                case "COMMIT" -> producer.commitTransaction();
                case "ABORT" -> producer.abortTransaction();
                case "FLUSH" -> producer.flush();
                case "R" -> {
                    byte[] key = f[1].equals("-") ? null : b64.decode(f[1]);
                    byte[] value = f[2].equals("-") ? null : b64.decode(f[2]);
                    producer.send(new ProducerRecord<>(topic, key, value), (meta, e) -> {
                        if (e != null && !(e instanceof TransactionAbortedException)) failed[0] = e;
                    });
                    sent++;
                }
                default -> throw new IllegalArgumentException("unknown script line: " + f[0]);
            }
        }
        if (producer != null) producer.close();
        if (failed[0] != null) throw failed[0];
        System.out.println("sent " + sent);
    }
}
