package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/gateway"
)

const keysUsage = `Usage:
  rulesgate keys generate --alg ES256|RS256|EdDSA --out FILE [--force]
  rulesgate keys rotate --file FILE [--alg ES256|RS256|EdDSA] [--keep 48h]

A key set is a JWK set of private keys with kids that are their RFC 7638
thumbprints, and roles: the active key signs, the next key is published
before it signs, retired keys stay published for --keep. rotate retires
the active key, makes the next one active and publishes a new next key;
replicas reload the file on SIGHUP and when it changes.
`

// defaultKeep is how long a retired key stays published: longer than the
// longest token lifetime (Auth0's default is 24 h).
const defaultKeep = 48 * time.Hour

// runKeys runs `rulesgate keys generate|rotate`.
func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return usageErrorf("a subcommand is required")
	}
	switch args[0] {
	case "generate":
		return keysGenerate(args[1:], stdout, stderr)
	case "rotate":
		return keysRotate(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	return usageErrorf("unknown subcommand %q\n\n%s", args[0], keysUsage)
}

// algFlag reads an --alg value.
func algFlag(s string) (jose.SignatureAlgorithm, error) {
	switch alg := jose.SignatureAlgorithm(s); alg {
	case "", jose.ES256, jose.RS256, jose.EdDSA:
		return alg, nil
	}
	return "", usageErrorf("--alg %q: ES256, RS256 or EdDSA", s)
}

func keysGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	algName := fs.String("alg", "ES256", "ES256, RS256 or EdDSA")
	out := fs.String("out", "", "file to write the private key set to; required")
	force := fs.Bool("force", false, "replace an existing file")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	alg, err := algFlag(*algName)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageErrorf("--out FILE is required")
	}
	if _, err := os.Stat(*out); err == nil && !*force {
		return fmt.Errorf("%s exists: rotate it with `rulesgate keys rotate --file %s`, or --force to replace it", *out, *out)
	}
	ks, err := gateway.GenerateKeySet(alg)
	if err != nil {
		return err
	}
	ks.Retired = map[string]time.Time{}
	if err := gateway.WriteKeySet(*out, ks); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: active %s key %s\n", *out, ks.Active.Algorithm(), ks.Active.KeyID())
	return nil
}

func keysRotate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	file := fs.String("file", "", "the key set to rotate, written by keys generate; required")
	algName := fs.String("alg", "", "algorithm of the new next key (default: the active key's)")
	keep := fs.Duration("keep", defaultKeep, "how long a retired key stays published; longer than the longest token lifetime")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	alg, err := algFlag(*algName)
	if err != nil {
		return err
	}
	if *file == "" {
		return usageErrorf("--file FILE is required")
	}
	ks, err := gateway.LoadKeySet(*file)
	if err != nil {
		return err
	}
	if ks.Retired == nil && len(ks.Keys) > 1 {
		return errors.New("rotate: the set has no roles (not written by rulesgate keys); generate one with `rulesgate keys generate`")
	}
	before := ks.Active.KeyID()
	if err := ks.Rotate(alg, time.Now(), *keep); err != nil {
		return err
	}
	if err := gateway.WriteKeySet(*file, ks); err != nil {
		return err
	}
	if ks.Active.KeyID() != before {
		fmt.Fprintf(stdout, "active %s (was next), retired %s\n", ks.Active.KeyID(), before)
	} else {
		fmt.Fprintf(stdout, "active %s\n", before)
	}
	fmt.Fprintf(stdout, "next %s, published now, signs after the next rotation\n", ks.Next.KeyID())
	return nil
}
