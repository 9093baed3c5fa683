// Java's own verdicts for tests/unit/test_java_patterns.py: reads lines "pattern<TAB>text", each side as
// space-separated hexadecimal code points (so line terminators and astral characters travel intact), and
// prints for each line 1 when Pattern.compile(pattern).matcher(text).matches(), 0 when not, E when the
// pattern does not compile. Run as a single-file program: java JavaMatches.java < in > out
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

public class JavaMatches {
    static String decode(String hex) {
        StringBuilder text = new StringBuilder();
        for (String point : hex.trim().split(" ")) {
            if (!point.isEmpty()) {
                text.appendCodePoint(Integer.parseInt(point, 16));
            }
        }
        return text.toString();
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Map<String, Pattern> compiled = new HashMap<>();
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            String[] sides = line.split("\t", -1);
            String source = decode(sides[0]);
            Pattern pattern;
            try {
                pattern = compiled.computeIfAbsent(source, Pattern::compile);
            } catch (PatternSyntaxException e) {
                out.append("E\n");
                continue;
            }
            out.append(pattern.matcher(decode(sides[1])).matches() ? "1\n" : "0\n");
        }
        System.out.print(out);
    }
}
