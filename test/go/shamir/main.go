// Command shamir-ref is the cross-implementation reference for sealkeeper's Shamir code: it splits and combines
// with Vault's own package (github.com/hashicorp/vault/shamir, the algorithm OpenBao's helper/shamir also uses).
//
// Input on stdin: a JSON array of requests, each {"op":"split","secret":HEX,"parts":N,"threshold":T} or
// {"op":"combine","shares":[HEX,...]}. Output on stdout: a JSON array of results in the same order, each
// {"shares":[HEX,...]} or {"secret":HEX} or {"error":"..."}.
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/vault/shamir"
)

type request struct {
	Op        string   `json:"op"`
	Secret    string   `json:"secret,omitempty"`
	Parts     int      `json:"parts,omitempty"`
	Threshold int      `json:"threshold,omitempty"`
	Shares    []string `json:"shares,omitempty"`
}

type result struct {
	Shares []string `json:"shares,omitempty"`
	Secret *string  `json:"secret,omitempty"`
	Error  string   `json:"error,omitempty"`
}

func handle(req request) result {
	switch req.Op {
	case "split":
		secret, err := hex.DecodeString(req.Secret)
		if err != nil {
			return result{Error: "secret is not hex"}
		}
		shares, err := shamir.Split(secret, req.Parts, req.Threshold)
		if err != nil {
			return result{Error: err.Error()}
		}
		out := make([]string, len(shares))
		for i, s := range shares {
			out[i] = hex.EncodeToString(s)
		}
		return result{Shares: out}
	case "combine":
		parts := make([][]byte, len(req.Shares))
		for i, s := range req.Shares {
			b, err := hex.DecodeString(s)
			if err != nil {
				return result{Error: fmt.Sprintf("share %d is not hex", i+1)}
			}
			parts[i] = b
		}
		secret, err := shamir.Combine(parts)
		if err != nil {
			return result{Error: err.Error()}
		}
		s := hex.EncodeToString(secret)
		return result{Secret: &s}
	default:
		return result{Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
}

func main() {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		fmt.Fprintln(os.Stderr, "shamir-ref: bad input:", err)
		os.Exit(1)
	}
	out := make([]result, len(reqs))
	for i, r := range reqs {
		out[i] = handle(r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "shamir-ref:", err)
		os.Exit(1)
	}
}
