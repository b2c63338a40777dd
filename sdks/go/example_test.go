package tokenwarden_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
)

func Example() {
	tw, err := tokenwarden.NewClient(tokenwarden.Options{
		BaseURL: "https://tokenwarden.internal",
		APIKey:  os.Getenv("TOKENWARDEN_API_KEY"),
	})
	if err != nil {
		panic(err)
	}
	token, err := tw.Token(context.Background(), "conn_123", &tokenwarden.TokenOptions{MinTTL: time.Minute})
	var twErr *tokenwarden.Error
	switch {
	case errors.As(err, &twErr) && twErr.Code == tokenwarden.CodeNeedsReauth:
		fmt.Println("ask the owner to connect again:", twErr.Reason)
	case err != nil:
		fmt.Println("no token now:", err)
	default:
		fmt.Println("token version", token.Version)
	}
}

// A server on HTTPS with a private CA's certificate that requires client certificates
// (tokenwarden serve --tls-cert --tls-key --tls-client-ca), and a service client bound to one.
func Example_tls() {
	roots, err := tokenwarden.LoadCAFile("/etc/tokenwarden/ca.pem")
	if err != nil {
		panic(err) // an invalid_request *tokenwarden.Error naming the file
	}
	certificate, err := tokenwarden.LoadKeyPair("/etc/tokenwarden/worker.pem", "/etc/tokenwarden/worker.key")
	if err != nil {
		panic(err)
	}
	tw, err := tokenwarden.NewClient(tokenwarden.Options{
		BaseURL:   "https://tokenwarden.internal:8443",
		APIKey:    os.Getenv("TOKENWARDEN_API_KEY"),
		TLSConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{certificate}},
	})
	if err != nil {
		panic(err)
	}
	_, err = tw.Token(context.Background(), "conn_123", nil)
	var twErr *tokenwarden.Error
	if errors.As(err, &twErr) && twErr.TLS {
		fmt.Println("fix the TLS settings:", twErr.Message) // not retried: asking again cannot help
	}
}
